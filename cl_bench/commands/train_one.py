"""``cl-bench train-one``: train one detector on one category (or several, one at a time) and
print image and pixel AUROC (:mod:`cl_bench.metrics`).

Example::

    cl-bench train-one --detector hybrid --category bottle --root ../shared/data/mvtec_ad_mini \\
        --image-size 128 --epochs 30 --backbone efficientnet_lite0 --seed 0

``--detector`` and ``--categories`` take comma-separated lists, so one command prints a table;
``--variants`` adds rows for the hybrid's forward-only and reverse-only maps and for other
fusion settings, scored on the same trained model (how the hybrid's defaults were chosen).
Training is a run's loop (:func:`cl_bench.training.train_on_dataset`, Avalanche's
``DistillationStrategy``) seeded as a run seeds its first task, so the figures for ``--seed S``
are those a one-task naive run with seed S measures after its task. By default Adam, lr 0.005,
betas (0.5, 0.999) (RD4AD's official optimiser) for every detector, constant rate, fixed epochs,
no model selection; the detector is calibrated on its training images afterwards.
``--config experiments/X.yaml`` takes the ``train`` section of an
experiment instead (each detector with its ``train.per_method`` settings, optimizer and
learning-rate schedule as in a run); ``--set train.KEY=VALUE`` and ``--epochs``,
``--batch-size``, ``--lr`` override it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cl_bench.errors import ConfigError, DataError, RunError

if TYPE_CHECKING:  # torch, the config and the detectors load when the command runs
    import numpy as np
    from torch.utils.data import Dataset

    from cl_bench.config import TrainConfig
    from strategies.detectors import AnomalyDetector

#: the train section without --config: the same settings for every detector
DEFAULT_TRAIN: dict[str, Any] = {"epochs": 30, "batch_size": 8,
                                 "optimizer": {"name": "adam", "lr": 0.005,
                                               "betas": [0.5, 0.999]}}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-one",
        help="train one detector on one category and print image/pixel AUROC",
        description=__doc__.split("Example::")[0].strip(),
    )
    p.add_argument("--detector", default=None,
                   help="detector name(s), comma-separated (cl-bench list shows them); default: "
                        "the first of a config's default model.methods (the hybrid)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", type=Path, help="MVTec-layout data folder")
    where.add_argument("--synthetic", action="store_true",
                       help="use the generated synthetic set (cached)")
    p.add_argument("--synthetic-categories", type=int, default=5,
                   help="categories in the synthetic set (default 5)")
    p.add_argument("--category", default=None, help="category to train on")
    p.add_argument("--categories", default=None,
                   help="comma-separated categories, or 'all': each trained separately")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--config", type=Path, default=None,
                   help="experiment YAML whose train section (with train.per_method) is used")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="train.KEY=VALUE",
                   help="override a train key, e.g. train.per_method.stpm.epochs=3; repeatable")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"train.epochs for every detector (default {DEFAULT_TRAIN['epochs']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"train.batch_size (default {DEFAULT_TRAIN['batch_size']})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"train.optimizer.lr (default {DEFAULT_TRAIN['optimizer']['lr']})")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="imagenet",
                   help="'imagenet', 'none' or a state_dict file of the backbone")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="detector option (YAML value), e.g. weighting=dwa or "
                        "student_blocks=[1,1,1]; repeatable")
    p.add_argument("--variants", action="store_true",
                   help="hybrid: also score, on the same trained model, the forward-only and "
                        "reverse-only maps and the fused map for fusion_normalization in "
                        "{standardize, none} x fusion_alpha in {0.25, 0.5, 0.75}")
    p.set_defaults(func=run)


# ---- reusable pieces ------------------------------------------------------------------------
def train_settings(args: argparse.Namespace) -> TrainConfig:
    """The ``train`` section: ``--config``'s (or :data:`DEFAULT_TRAIN`), then ``--set``, then the
    flags (which set the shared values; a ``per_method`` entry that sets a key keeps its own)."""
    from cl_bench.config import load_yaml, parse_override, set_key, validate

    shared = (load_yaml(args.config).get("train") or {}) if args.config else DEFAULT_TRAIN
    raw = {"train": copy.deepcopy(shared)}
    for text in args.overrides:
        path, value = parse_override(text)
        if path[0] != "train":
            raise ConfigError(f"--set {text!r}: train-one takes train.* keys only")
        set_key(raw, path, value, f"--set {text!r}")
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size)):
        if value is not None:
            raw["train"][key] = value
    if args.lr is not None:
        raw["train"].setdefault("optimizer", {})["lr"] = args.lr
    return validate(raw, source=str(args.config or "train-one")).train


FUSION_VARIANTS = [(norm, alpha) for norm in ("standardize", "none")
                   for alpha in (0.25, 0.5, 0.75)]


def _variant_maps(detector: AnomalyDetector, output, size) -> dict:
    """The hybrid's branch-only maps and fused maps under other fusion settings."""
    extra = detector.branch_anomaly_maps(output, size)
    maps = {"forward": extra["forward"], "reverse": extra["reverse"]}
    saved = detector.fusion_normalization, detector.fusion_alpha
    try:
        for norm, alpha in FUSION_VARIANTS:
            if (norm, alpha) == saved:
                continue
            detector.fusion_normalization, detector.fusion_alpha = norm, alpha
            maps[f"{norm[:3]}/a{alpha:.2f}"] = detector.anomaly_map_from_output(output, size)
    finally:
        detector.fusion_normalization, detector.fusion_alpha = saved
    return maps


def predict(detector: AnomalyDetector, dataset: Dataset, batch_size: int, device: str,
            variants: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per map kind ("map", and with ``variants`` the hybrid's other maps):
    (image scores (N,), maps (N, H, W))."""
    import torch

    with torch.no_grad():
        return _predict(detector, dataset, batch_size, device, variants)


def _predict(detector: AnomalyDetector, dataset: Dataset, batch_size: int, device: str,
             variants: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torch
    from torch.utils.data import DataLoader

    detector.eval()
    out: dict[str, tuple[list, list]] = {}
    for images, _, _ in DataLoader(dataset, batch_size=batch_size):
        images = images.to(device)
        output = detector(images)
        size = tuple(images.shape[-2:])
        maps = {"map": detector.anomaly_map_from_output(output, size)}
        if variants and hasattr(detector, "branch_anomaly_maps"):
            maps.update(_variant_maps(detector, output, size))
        for kind, m in maps.items():
            scores, arrays = out.setdefault(kind, ([], []))
            scores.append(detector.image_scores(m).cpu())
            arrays.append(m[:, 0].cpu())
    return {k: (torch.cat(s).numpy(), torch.cat(a).numpy()) for k, (s, a) in out.items()}


def _datasets(root: Path, category: str, image_size: int):
    from cl_bench.data import MVTecDataset

    return (MVTecDataset(root, category, "train", image_size),
            MVTecDataset(root, category, "test", image_size))


def _labels_masks(test_set: Dataset) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    from torch.utils.data import DataLoader

    labels, masks = [], []
    for _, label, mask in DataLoader(test_set, batch_size=64):
        labels.append(label.numpy())
        masks.append(mask[:, 0].numpy())
    return np.concatenate(labels), np.concatenate(masks)


# ---- the command ----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from cl_bench.cli_options import parse_options
    from cl_bench.data import list_categories
    from cl_bench.training import (
        image_and_pixel_auroc,
        seed_for_build,
        seed_for_training,
        train_on_dataset,
    )
    from strategies.detectors import available_detectors, build_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # as a run does
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise RunError(f"--device {args.device}: CUDA is not available here; use --device cpu")
    if args.synthetic:
        from cl_bench.data import ensure_synthetic

        root = ensure_synthetic(n_categories=args.synthetic_categories, size=args.image_size)
    else:
        root = args.root
    known = list_categories(root)
    if args.categories in (None, "") and not args.category:
        raise ConfigError("give --category NAME or --categories a,b,c|all")
    if args.categories == "all":
        categories = known
    else:
        categories = [c.strip() for c in (args.categories or args.category).split(",") if c]
    for category in categories:
        if category not in known:
            raise DataError(f"category {category!r} is not in {root}; it has {', '.join(known)}")
    from cl_bench.config import DEFAULT_METHODS

    detectors = [d.strip() for d in (args.detector or DEFAULT_METHODS[0]).split(",") if d.strip()]
    options = parse_options(args.option)
    unused = set(options) - set().union(*(_options_of(d) for d in detectors if
                                         d in available_detectors()))
    if len(detectors) > 1 and unused:
        raise ConfigError(f"--option {', '.join(sorted(unused))}: no detector among "
                          f"{', '.join(detectors)} has it")

    train = train_settings(args)
    print(f"# data={root} backbone={args.backbone} weights={args.weights} "
          f"size={args.image_size} seed={args.seed} options={options}")
    for name in detectors:
        settings = train.for_method(name)
        print(f"# {name}: epochs={settings.epochs} batch={settings.batch_size} "
              f"optimizer={settings.optimizer.model_dump()} "
              f"schedule={settings.schedule.model_dump()}")
    print(f"{'category':<12} {'detector':<22} {'image_auroc':>11} {'pixel_auroc':>11} "
          f"{'train_s':>8}")
    table: dict[str, list[tuple[float, float]]] = {}
    for category in categories:
        train_set, test_set = _datasets(root, category, args.image_size)
        labels, masks = _labels_masks(test_set)
        for name in detectors:
            seed_for_build(args.seed)
            detector_options = options if len(detectors) == 1 else {
                k: v for k, v in options.items() if k in _options_of(name)}
            detector = build_detector(name, args.backbone, args.weights, **detector_options)
            detector.to(args.device)
            start = time.perf_counter()
            settings = train.for_method(name)
            seed_for_training(args.seed)
            train_on_dataset(detector, train_set, settings, args.device)
            seconds = time.perf_counter() - start
            predictions = predict(detector, test_set, settings.batch_size, args.device,
                                  variants=args.variants)
            for kind, (scores, maps) in predictions.items():
                row = name if kind == "map" else f"{name}:{kind}"
                image, pixel = image_and_pixel_auroc(scores, maps, labels, masks)
                table.setdefault(row, []).append((image, pixel))
                print(f"{category:<12} {row:<22} {image:>11.3f} {pixel:>11.3f} {seconds:>8.1f}")
            sys.stdout.flush()
    if len(categories) > 1:
        for row, values in table.items():
            mean = np.nanmean(np.array(values), axis=0)
            print(f"{'mean':<12} {row:<22} {mean[0]:>11.3f} {mean[1]:>11.3f}")
    return 0


def _options_of(name: str) -> set[str]:
    from strategies.detectors import DETECTOR_OPTIONS

    return set(DETECTOR_OPTIONS.get(name, {}))
