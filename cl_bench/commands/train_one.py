"""``cl-bench train-one`` (placeholder until implemented)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser("train-one", help="(not yet implemented)")
