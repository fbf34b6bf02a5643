"""Benchmarks: `python -m bench [GROUP]` prints one JSON object, each figure beside its floor."""
