"""``cl-bench data``: create synthetic data (``synth``) and summarise a dataset (``info``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cl_bench.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="create synthetic data or summarise a dataset (MVTec AD, MPDD, VisA, BTAD)"
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _usage(parser))

    synth = actions.add_parser(
        "synth",
        help="write a synthetic MVTec-like dataset",
        description="Write a synthetic dataset in the MVTec AD layout (textures and objects, "
        "with scratches, spots, holes, colour changes and missing parts and their exact masks). "
        "Deterministic for a seed.",
    )
    synth.add_argument("--out", required=True, type=Path, help="folder to write (empty or new)")
    synth.add_argument("--categories", type=int, default=5, help="number of categories (1-15)")
    synth.add_argument("--train", type=int, default=20, help="training images per category")
    synth.add_argument(
        "--test", type=int, default=20, help="test images per category (half good, half defective)"
    )
    synth.add_argument("--size", type=int, default=128, help="image side in pixels")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument(
        "--lookalike", type=int, default=0, metavar="N",
        help="add N look-alike categories <family>1..<family>N: the family's texture at "
        "slightly higher spatial frequencies (0-8; default 0)",
    )
    synth.add_argument(
        "--family", default="stripes", choices=["stripes", "checker", "weave", "dots", "wood"],
        help="the texture the look-alike categories vary (default stripes)",
    )
    synth.set_defaults(func=run_synth)

    info = actions.add_parser(
        "info",
        help="print the categories of a dataset with their counts",
        description="Print each category of a dataset in the MVTec AD (also MPDD), VisA or BTAD "
        "layout: image counts, defect types, image sizes and modes. Fails with a clear message "
        "on a malformed dataset. Layouts: docs/datasets.md.",
    )
    info.add_argument(
        "root", type=Path,
        help="dataset root (MVTec AD/MPDD/BTAD: holds the category folders; VisA: holds "
        "split_csv/1cls.csv and the category folders)",
    )
    info.add_argument(
        "--format", default="auto", choices=["auto", "mvtec", "visa", "btad"],
        help="the dataset's layout (default: detected from the root)",
    )
    info.add_argument("--categories", nargs="+", metavar="NAME", help="only these categories")
    info.add_argument(
        "--check",
        action="store_true",
        help="also decode every image and mask (finds truncated files and mis-sized masks, "
        "and lists empty masks of defective images)",
    )
    info.set_defaults(func=run_info)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_synth(args: argparse.Namespace) -> int:
    from cl_bench.data.synthetic import category_names, synthesize

    start = time.perf_counter()
    root = synthesize(args.out, args.categories, args.train, args.test, args.size, args.seed,
                      lookalike=args.lookalike, family=args.family)
    seconds = time.perf_counter() - start
    names = category_names(args.categories, args.lookalike, args.family)
    print(
        f"wrote {len(names)} categories ({', '.join(names)}) to {root}: {args.train} train and "
        f"{args.test} test images each, {args.size}x{args.size} px, seed {args.seed}, "
        f"in {seconds:.1f} s"
    )
    return 0


def run_info(args: argparse.Namespace) -> int:
    from cl_bench.data.formats import layout_for
    from cl_bench.data.summary import format_table, summarize_category

    layout = layout_for(args.root, args.format)
    categories = args.categories or layout.list_categories(args.root)
    for name in categories:
        layout.check_category(args.root, name)  # unknown names fail before any work
    summaries, problems = [], []
    for name in categories:
        try:
            summaries.append(summarize_category(args.root, name, args.check, layout.name))
        except DataError as exc:
            problems.append(f"{name}: {exc}")
    if summaries:
        print(format_table(args.root, summaries, layout.name))
    if problems:
        raise DataError(
            f"{len(problems)} of {len(categories)} categories under {args.root} have problems:\n"
            + "\n".join(problems)
        )
    if args.check:
        print("check: every image and mask decoded; mask sizes match their images")
        empty = [(s.category, m) for s in summaries for m in s.empty_masks]
        if empty:
            print(f"warning: {len(empty)} defective image(s) have an empty mask (no defect "
                  "pixel); they are kept as published (docs/datasets.md, 'Data checks'):")
            for category, mask in empty:
                print(f"  {category}: {mask}")
    return 0
