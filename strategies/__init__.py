"""Detectors, teacher backbones and the Avalanche strategies that train them.

This package never imports :mod:`cl_bench` (docs/architecture.md, the import contracts).
"""
