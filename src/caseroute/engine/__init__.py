"""Evaluation: signals, case rules (durable_rules + python cross-check), matching, ranking."""
