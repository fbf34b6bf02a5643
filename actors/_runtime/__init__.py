"""The actor runtime: Steward's `_core`. It imports no feed, risk or strategy code."""
