"""``cl-bench bench anomalib``: our STPM / RD4AD and AU-PRO side by side with anomalib's.

``--mode accuracy`` instead trains our STPM and anomalib's STFPM identically on real images and
prints their pixel and image AUROC per category (:mod:`cl_bench.benchmarks.stpm_peer`);
``--mode patchcore`` fits our PatchCore and anomalib's on the same images and teacher
(:mod:`cl_bench.benchmarks.patchcore_peer`), and with ``--nn-bench`` times the
nearest-neighbour search (torch ``cdist`` against faiss).

Needs the ``compare`` extra (``pip install -e ".[compare]"``, which installs anomalib).

Models. anomalib's ``STFPMModel`` and ``ReverseDistillationModel`` (the torch models, no
Lightning) against :func:`strategies.detectors.build_detector` ``"stpm"`` / ``"rd4ad"`` on the
same backbone, image size, batch and data (random normal images, seeded), in one process.
The like-for-like contender is ours built with anomalib's architecture ("matched"): for RD4AD
that is ``ocbe_width=0.5``, since anomalib's OCBE blocks are half as wide as the official
code's (512 against 1024 inner channels on Wide-ResNet-50-2); our default, official layout is
timed alongside ("official").
**All teachers have random weights** (ours ``weights="none"``; anomalib's teacher through
``pre_trained=False``, and for STFPM, whose constructor hard-codes ``pre_trained=True``, by
making ``timm.create_model`` ignore ``pretrained`` while it is built), so nothing is downloaded;
weights do not change the cost of a convolution. Both students train with Adam (lr 1e-4), each
as its project builds it: anomalib with torch's default (foreach) implementation, ours with the
fused one that our runs use (``train.optimizer.fused``, default true).
A training step is forward + loss + backward + optimizer step; an inference step is the anomaly
map and the image scores under ``torch.no_grad``. The contenders are timed in alternation
(anomalib, ours, ours with the teacher cache; the next round in reverse order) for ``--rounds``
rounds, one untimed step then ``--steps`` timed steps each; each figure is the median over
rounds, so all contenders see the same load on a shared machine and no place in a round is
favoured. "ours+cache" is the steady state of the teacher-feature
cache (every image seen before: all hits, the teacher does not run).

AU-PRO. The same ``--maps`` synthetic maps (``--size``^2 pixels, defect blobs on every second
map; :func:`cl_bench.benchmarks.metrics.synthetic_task`) are scored by ``anomalib.metrics.AUPRO``
(update + compute), by our :func:`cl_bench.metrics.pixel_metrics` (pixel AUROC, AP *and* AU-PRO
from one ranking) and by our exact reference :func:`cl_bench.metrics.au_pro`; prints each value
and time (median of ``--repeat``) and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cl_bench.benchmarks.offline_timm import timm_without_pretrained
from cl_bench.errors import ConfigError, RunError

if TYPE_CHECKING:  # torch loads when the benchmark runs, not for cl-bench --help
    import torch

PAIRS = {"stpm": ("stfpm", "resnet18"), "rd4ad": ("reverse_distillation", "wide_resnet50_2")}
# Our options that build anomalib's architecture (the like-for-like contender), and further
# layouts timed alongside. anomalib's OCBE blocks have inner width 512 on Wide-ResNet-50-2
# where the official RD4AD code (and our default) has 1024: see strategies.detectors.rd4ad.
MATCHED_OPTIONS: dict[str, dict[str, object]] = {"stpm": {}, "rd4ad": {"ocbe_width": 0.5}}
EXTRA_LAYOUTS: dict[str, dict[str, dict[str, object]]] = {"stpm": {}, "rd4ad": {"official": {}}}


def require_anomalib():
    try:
        import anomalib
    except ImportError as exc:
        raise RunError(
            "cl-bench bench anomalib needs anomalib, which is not installed; install the "
            "optional 'compare' extra: pip install -e \".[compare]\" (or pip install anomalib)"
        ) from exc
    return anomalib


class Contender:
    """One model under test: ``train_step()`` and ``infer_step()`` on fixed images."""

    def __init__(self, label: str, model: torch.nn.Module, loss: Callable[[], torch.Tensor],
                 infer: Callable[[], object], optimizer: torch.optim.Optimizer) -> None:
        self.label, self.model, self._loss, self._infer = label, model, loss, infer
        self.optimizer = optimizer

    def train_step(self) -> None:
        self.model.train()
        loss = self._loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def infer_step(self) -> None:
        import torch

        self.model.eval()
        with torch.no_grad():
            self._infer()


def anomalib_contender(kind: str, backbone: str, images: torch.Tensor) -> Contender:
    import torch

    require_anomalib()
    layers = ["layer1", "layer2", "layer3"]
    if kind == "stfpm":
        from anomalib.models.image.stfpm.loss import STFPMLoss
        from anomalib.models.image.stfpm.torch_model import STFPMModel

        with timm_without_pretrained():
            model = STFPMModel(layers=layers, backbone=backbone)
        criterion = STFPMLoss()
        params = model.student_model.parameters()
    else:
        from anomalib.models.image.reverse_distillation.loss import ReverseDistillationLoss
        from anomalib.models.image.reverse_distillation.torch_model import (
            ReverseDistillationModel,
        )

        with timm_without_pretrained():
            model = ReverseDistillationModel(
                backbone=backbone, input_size=tuple(images.shape[-2:]), layers=layers,
                anomaly_map_mode="add", pre_trained=False)
        criterion = ReverseDistillationLoss()
        params = [*model.bottleneck.parameters(), *model.decoder.parameters()]

    def loss() -> torch.Tensor:
        return criterion(*model(images))

    def infer() -> object:
        out = model(images)
        return out.anomaly_map, out.pred_score

    # anomalib's Lightning modules build torch's default (foreach) Adam
    optimizer = torch.optim.Adam(list(params), lr=1e-4, betas=(0.5, 0.999))
    return Contender(f"anomalib {kind}", model, loss, infer, optimizer)


def our_contender(name: str, backbone: str, images: torch.Tensor, cached: bool = False,
                  options: dict[str, object] | None = None, layout: str = "") -> Contender:
    from cl_bench.benchmarks.detectors import fill_teacher_cache
    from strategies.detectors import build_detector
    from strategies.training.optimizers import build_optimizer

    detector = build_detector(name, backbone=backbone, weights="none", **(options or {}))
    if cached:
        fill_teacher_cache(detector, images)

    def infer() -> object:
        maps = detector.anomaly_map(images)
        return maps, detector.image_scores(maps)

    label = f"ours {name}" + (f" {layout}" if layout else "") + ("+cache" if cached else "")
    # the optimizer our runs build by default (train.optimizer: adam, fused)
    optimizer = build_optimizer(detector.trainable_parameters(), "adam", lr=1e-4)
    return Contender(label, detector, lambda: detector.loss(images).total, infer, optimizer)


def median_step_seconds(contenders: list[Contender], kind: str, rounds: int,
                        steps: int) -> dict[str, float]:
    """Median (over rounds) of the mean step time, contenders timed in alternation.

    Odd rounds run the contenders in reverse order (A B C, C B A, ...): the place in a round alone
    moves a model's median step time (measured in docs/performance.md, "Side by side with
    anomalib"), and reversing cancels such a position effect for an even number of rounds."""
    times: dict[str, list[float]] = {c.label: [] for c in contenders}
    for round_index in range(rounds):
        for contender in (contenders if round_index % 2 == 0 else contenders[::-1]):
            step = contender.train_step if kind == "train" else contender.infer_step
            step()  # untimed: caches and the allocator adapt to this model again
            start = time.perf_counter()
            for _ in range(steps):
                step()
            times[contender.label].append((time.perf_counter() - start) / steps)
    return {label: statistics.median(values) for label, values in times.items()}


def compare_models(args: argparse.Namespace, ours: str, backbone: str) -> dict[str, float]:
    """Time anomalib's model, ours in anomalib's layout, ours in any other layout, and ours
    with the teacher cache; print throughput and the ratios to anomalib. Returns train ratios."""
    import torch

    kind = PAIRS[ours][0]
    torch.manual_seed(0)
    b, s = args.batch_size, args.image_size
    images = torch.randn(b, 3, s, s, generator=torch.Generator().manual_seed(0))
    matched = MATCHED_OPTIONS[ours]
    layout = "matched" if EXTRA_LAYOUTS[ours] else ""
    contenders = [anomalib_contender(kind, backbone, images),
                  our_contender(ours, backbone, images, options=matched, layout=layout)]
    for name, options in EXTRA_LAYOUTS[ours].items():
        contenders.append(our_contender(ours, backbone, images, options=options, layout=name))
    if args.cache:
        contenders.append(our_contender(ours, backbone, images, cached=True, options=matched,
                                        layout=layout))
    print(f"\n## {ours} vs anomalib {kind}: backbone {backbone} (random weights), {s} px, "
          f"batch {b}, {args.rounds} alternating rounds x {args.steps} steps")
    for c in contenders:
        n = sum(p.numel() for p in c.optimizer.param_groups[0]["params"])
        print(f"#   {c.label}: {n / 1e6:.1f}M trainable parameters")
    if matched:
        print(f"#   'matched' = options {matched}, the architecture anomalib builds")
    print(f"{'model':<28} {'train img/s':>11} {'infer img/s':>11} {'train ratio':>11} "
          f"{'infer ratio':>11}")
    train = median_step_seconds(contenders, "train", args.rounds, args.steps)
    infer = median_step_seconds(contenders, "infer", args.rounds, args.steps)
    base = contenders[0].label
    figures = {}
    for c in contenders:
        rt, ri = train[base] / train[c.label], infer[base] / infer[c.label]
        print(f"{c.label:<28} {b / train[c.label]:>11.2f} {b / infer[c.label]:>11.2f} "
              f"{rt:>11.2f} {ri:>11.2f}")
        figures[c.label] = rt
    print("(ratio = ours / anomalib throughput; goal >= 1.0 for the same architecture "
          "without the cache)")
    return figures


def _timed(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    seconds, value = [], float("nan")
    for _ in range(repeat):
        start = time.perf_counter()
        value = float(fn())
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), value


def compare_au_pro(args: argparse.Namespace) -> None:
    import torch

    require_anomalib()
    from anomalib.metrics import AUPRO

    from cl_bench.benchmarks.metrics import synthetic_task
    from cl_bench.metrics import au_pro, pixel_metrics

    maps, masks = synthetic_task(args.maps, args.size, seed=0)
    maps_t, masks_t = torch.from_numpy(maps), torch.from_numpy(masks).to(torch.int64)

    def anomalib_value() -> float:
        metric = AUPRO(fields=["anomaly_map", "gt_mask"], fpr_limit=args.fpr_limit)
        metric.update(types.SimpleNamespace(anomaly_map=maps_t, gt_mask=masks_t))
        return float(metric.compute())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a_s, a_v = _timed(anomalib_value, args.repeat)
        o_s, o_v = _timed(lambda: pixel_metrics(maps, masks, fpr_limit=args.fpr_limit)["au_pro"],
                          args.repeat)
        e_s, e_v = _timed(lambda: au_pro(maps, masks, args.fpr_limit), args.repeat)
    print(f"\n## AU-PRO, {args.maps} maps of {args.size}x{args.size} "
          f"({maps.size / 1e6:.1f}M pixels), fpr_limit {args.fpr_limit}, median of {args.repeat}")
    print(f"{'implementation':<56} {'seconds':>8} {'AU-PRO':>18}")
    print(f"{'anomalib.metrics.AUPRO':<56} {a_s:>8.3f} {a_v:>18.15f}")
    print(f"{'ours: pixel_metrics (AUROC + AP + AU-PRO, one ranking)':<56} {o_s:>8.3f} "
          f"{o_v:>18.15f}")
    print(f"{'ours: au_pro (exact reference, alone)':<56} {e_s:>8.3f} {e_v:>18.15f}")
    print(f"speed-up over anomalib: pixel_metrics {a_s / o_s:.1f}x (goal >= 5), "
          f"exact au_pro {a_s / e_s:.1f}x")
    print(f"|pixel_metrics - exact| = {abs(o_v - e_v):.1e}; "
          f"|anomalib - exact| = {abs(a_v - e_v):.1e}")


def run(args: argparse.Namespace) -> int:
    import torch

    anomalib = require_anomalib()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "accuracy":
        from cl_bench.benchmarks.stpm_peer import compare_accuracy

        if args.root is None or not args.root.is_dir():
            raise ConfigError(f"--root {args.root}: give the MVTec-layout folder to train on, "
                              "e.g. --root ../shared/data/mvtec_ad_mini")
        print(f"# anomalib {anomalib.__version__}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} CPU threads")
        compare_accuracy(args)
        return 0
    if args.mode == "patchcore":
        from cl_bench.benchmarks.patchcore_peer import run_patchcore

        if args.root is not None and not args.root.is_dir():
            raise ConfigError(f"--root {args.root}: not a folder; give the MVTec-layout folder, "
                              "e.g. --root ../shared/data/mvtec_ad_mini (or omit it with "
                              "--nn-bench)")
        if args.root is None and not args.nn_bench:
            raise ConfigError("--mode patchcore needs --root (the MVTec-layout folder) and/or "
                              "--nn-bench")
        print(f"# anomalib {anomalib.__version__}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} CPU threads")
        run_patchcore(args)
        return 0
    if args.rounds < 1 or args.steps < 1 or args.batch_size < 1 or args.image_size < 32:
        raise ConfigError("--rounds >= 1, --steps >= 1, --batch-size >= 1, --image-size >= 32")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in PAIRS:
            raise ConfigError(f"--models: unknown model {m!r}; choose from {', '.join(PAIRS)}")
    print(f"# anomalib {anomalib.__version__}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    for m in models:
        backbone = args.stpm_backbone if m == "stpm" else args.rd4ad_backbone
        compare_models(args, m, backbone)
    if args.maps > 0:
        compare_au_pro(args)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "anomalib", help="our STPM/RD4AD and AU-PRO vs anomalib's (needs the compare extra)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="stpm,rd4ad", help="comma-separated: stpm, rd4ad")
    p.add_argument("--stpm-backbone", default="resnet18")
    p.add_argument("--rd4ad-backbone", default="wide_resnet50_2")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=6,
                   help="alternating rounds, odd ones in reverse order (median; even)")
    p.add_argument("--steps", type=int, default=2, help="timed steps per round")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                   help="also time ours with a full teacher cache (default: on)")
    p.add_argument("--maps", type=int, default=150, help="AU-PRO maps (0: skip AU-PRO)")
    p.add_argument("--size", type=int, default=256, help="AU-PRO map side")
    p.add_argument("--fpr-limit", type=float, default=0.3)
    p.add_argument("--repeat", type=int, default=3, help="AU-PRO repetitions (median)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    acc = p.add_argument_group(
        "accuracy mode", "--mode accuracy: our STPM and anomalib's STFPM trained identically "
        "per category on real images (cl_bench.benchmarks.stpm_peer); --image-size and "
        "--batch-size apply")
    acc.add_argument("--mode", choices=("speed", "accuracy", "patchcore"), default="speed",
                     help="speed: throughput and AU-PRO (default); accuracy: STPM vs STFPM "
                     "AUROC; patchcore: our PatchCore vs anomalib's AUROC")
    acc.add_argument("--root", type=Path, default=None, help="MVTec-layout data folder")
    acc.add_argument("--categories", default="all", help="comma-separated, or 'all'")
    acc.add_argument("--epochs", type=int, default=30)
    acc.add_argument("--lr", type=float, default=0.4, help="SGD learning rate (STPM paper)")
    acc.add_argument("--momentum", type=float, default=0.9)
    acc.add_argument("--weight-decay", type=float, default=1e-4)
    acc.add_argument("--seed", type=int, default=0)
    acc.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="an option of our STPM or PatchCore (YAML value), e.g. sigma=0; "
                     "repeatable")
    add_patchcore_arguments(p)
    p.set_defaults(func=run)


def add_patchcore_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of --mode patchcore (:mod:`cl_bench.benchmarks.patchcore_peer`)."""
    group = parser.add_argument_group(
        "patchcore mode", "--mode patchcore: our PatchCore and anomalib's fitted per category on "
        "--root (cl_bench.benchmarks.patchcore_peer); --image-size, --batch-size, --categories, "
        "--seed, --option (our PatchCore's options) apply")
    group.add_argument("--coreset-ratio", type=float, default=0.1)
    group.add_argument("--nn-bench", action=argparse.BooleanOptionalAction, default=False,
                       help="also time cdist against faiss (needs faiss importable)")
    group.add_argument("--nn-banks", default="256,3840,23040,92160",
                       help="bank sizes (rows) for --nn-bench")
    group.add_argument("--nn-queries", type=int, default=4096,
                       help="query patches per search (16 test images of 128 px = 4096)")
    group.add_argument("--nn-dim", type=int, default=152, help="feature dimension (Lite0: 152)")
