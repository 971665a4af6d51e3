"""The ruleset language: YAML source with line numbers, schema, expressions, compiler, lint."""
