"""Benchmarks: scripts that print a table and write JSON + a PNG (run ``python -m benchmarks.<name>``)."""
