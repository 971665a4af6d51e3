"""Plain value types shared by every layer: case, roster, decision, explanation, errors."""
