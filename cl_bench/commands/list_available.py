"""``cl-bench list``: every detector, backbone and strategy available, and where it comes from."""

from __future__ import annotations

import argparse
import json


def run(args: argparse.Namespace) -> int:
    from cl_bench.extensions import catalogue, import_plugins, load_entry_points

    load_entry_points()
    import_plugins(args.plugin or [], where="--plugin")
    rows = catalogue()
    if args.json:
        if not args.options:
            rows = [{k: v for k, v in r.items() if k != "options"} for r in rows]
        print(json.dumps(rows, indent=1))
        return 0
    width = max(len(r["name"]) for r in rows)
    source_width = max(len(r["source"]) for r in rows)
    for kind, title in (("detector", "detectors"), ("backbone", "backbones"),
                        ("strategy", "strategies")):
        print(f"{title}:")
        for row in (r for r in rows if r["kind"] == kind):
            print(f"  {row['name']:<{width}}  {row['source']:<{source_width}}  "
                  f"{row['description']}")
            if args.options:
                _print_options(row.get("options", []))
    return 0


def _print_options(options: list[dict]) -> None:
    """One line per option: ``name = default  (allowed)  description``."""
    for option in options:
        print(f"      {option['option']} = {json.dumps(option['default'])}  "
              f"({option['allowed']})  {option['description']}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "list", help="list detectors, backbones and strategies with their source",
        description=__doc__)
    p.add_argument("--plugin", action="append", metavar="MODULE",
                   help="also import MODULE first (as a run config's plugins: list); repeatable")
    p.add_argument("--options", action="store_true",
                   help="also list each detector's options: default, allowed values, meaning")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(func=run)
