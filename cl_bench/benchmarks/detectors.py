"""``cl-bench bench detectors`` (placeholder until implemented)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("detectors", help="(not yet implemented)")
