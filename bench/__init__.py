"""Benchmarks of issue 5: `make bench` (full, rewrites docs/benchmarks.md) or `python -m bench --smoke`."""
