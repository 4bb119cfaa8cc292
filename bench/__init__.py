"""Benchmark harness: run a policy on a suite and report CALVIN-style metrics.

Entry point: ``python -m bench.run --policy SPEC --out DIR`` (see :mod:`bench.run`). The chain
evaluation engine is :mod:`bench.calvin_eval`; the statistics are in :mod:`bench.stats`.
"""

__version__ = "0.1.0"
