"""Benchmark commands: speed and memory figures for the README (``cl-bench bench ...``)."""
