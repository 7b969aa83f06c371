"""Benchmark commands: speed and memory figures for docs/performance.md (``cl-bench bench ...``)."""
