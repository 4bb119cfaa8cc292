"""Benchmark harness: ``python -m bench.run --suite NAME --policy SPEC --out DIR`` (:mod:`bench.session`)."""

__version__ = "0.1.0"
