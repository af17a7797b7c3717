"""Benchmarks of issue 5: ``make bench`` (full sizes, rewrites docs/benchmarks.md) or ``python -m bench --smoke``."""

import devtools  # noqa: F401 - puts layers/shared (the ``service`` package) on sys.path, as the layer is on Lambda
