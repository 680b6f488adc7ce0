"""Internal helpers: parameter constraints, input checks and randomness."""
