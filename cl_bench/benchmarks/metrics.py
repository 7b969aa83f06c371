"""``cl-bench bench metrics`` (placeholder until implemented)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("metrics", help="(not yet implemented)")
