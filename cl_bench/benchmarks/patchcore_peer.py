"""Our PatchCore against anomalib's, on the same images and teacher: ``cl-bench bench anomalib
--mode patchcore`` (see :mod:`cl_bench.benchmarks.anomalib_compare`).

One model per category. Both get the same frozen teacher (our offline ImageNet
EfficientNet-Lite0) and the same two levels: our levels 2 and 3 (strides 8 and 16, MBConv
blocks 4 and 10) = anomalib ``PatchcoreModel(backbone="tf_efficientnet_lite0",
layers=["blocks.2", "blocks.4"])`` on timm, our teacher's weights copied into anomalib's feature
extractor and checked to give the same features (:mod:`cl_bench.benchmarks.stpm_peer`). Both fit
on the category's training images (the same batches) with coreset ratio 0.1, the torch seed set
before each fit (each coreset's random first centre).

What differs by design (our conventions, docs/detectors.md): our map is upsampled bilinearly
(anomalib: nearest) before the same Gaussian (sigma 4); our image score is the maximum of that
map (anomalib: the paper's reweighted maximum patch score, ``num_neighbors=9``); both are
printed, and anomalib's map maximum as a third image score, the like-for-like one.

``--nn-bench``: the nearest-neighbour search of a batch of patch queries against banks of the
sizes these runs reach, ours (:func:`strategies.detectors.memory_bank.nearest_neighbor_distances`,
torch) against faiss ``IndexFlatL2`` (exact),
median of repeats; faiss must be importable (it is not a dependency of cl-bench).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from cl_bench.errors import RunError

#: timm's stages of tf_efficientnet_lite0 at strides 8 and 16 = our levels 2 and 3
TIMM_PATCHCORE_LAYERS = ("blocks.2", "blocks.4")


def anomalib_patchcore(teacher: nn.Module) -> nn.Module:
    """anomalib's ``PatchcoreModel`` on timm's Lite0 carrying ``teacher``'s weights."""
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel

    from cl_bench.benchmarks.offline_timm import timm_without_pretrained
    from cl_bench.benchmarks.stpm_peer import TIMM_BACKBONE, copy_teacher_weights

    with timm_without_pretrained():
        model = PatchcoreModel(layers=list(TIMM_PATCHCORE_LAYERS), backbone=TIMM_BACKBONE,
                               pre_trained=False)
    copy_teacher_weights(teacher, model.feature_extractor.feature_extractor)
    return model


def teacher_difference(ours: nn.Module, model: nn.Module, images: torch.Tensor) -> float:
    """Largest |our level 2, 3 - anomalib's blocks.2, blocks.4| on ``images``."""
    with torch.no_grad():
        mine = ours(images)[1:]
        theirs = list(model.feature_extractor(images).values())
    worst = max(float((a - b).abs().max()) for a, b in zip(mine, theirs, strict=True))
    if worst > 1e-4:
        raise RunError(f"anomalib's feature extractor with our weights differs from our teacher "
                       f"by {worst:.2e}: the weight copy or the padding does not match")
    return worst


def fit_anomalib(model: nn.Module, loader: DataLoader, ratio: float, seed: int) -> None:
    model.train()
    with torch.no_grad():
        for images, _, _ in loader:
            model(images)
    torch.manual_seed(seed)
    model.subsample_embedding(ratio)
    model.eval()


def fit_ours(detector: nn.Module, loader: DataLoader, seed: int) -> None:
    torch.manual_seed(seed)
    detector.eval()
    detector.fit(images for images, _, _ in loader)


@torch.no_grad()
def predictions(predict, dataset, batch_size: int) -> dict[str, np.ndarray]:
    maps, scores, labels, masks = [], [], [], []
    for images, label, mask in DataLoader(dataset, batch_size=batch_size):
        amap, score = predict(images)
        maps.append(amap[:, 0].float().numpy())
        scores.append(score.reshape(-1).float().numpy())
        labels.append(label.numpy())
        masks.append(mask[:, 0].numpy())
    return {"maps": np.concatenate(maps), "scores": np.concatenate(scores),
            "labels": np.concatenate(labels), "masks": np.concatenate(masks)}


def _anomalib_predict(model: nn.Module, images: torch.Tensor):
    out = model(images)
    return out.anomaly_map, out.pred_score


def _our_predict(detector: nn.Module, images: torch.Tensor):
    maps = detector.anomaly_map(images)
    return maps, detector.image_scores(maps)


def _aurocs(p: dict[str, np.ndarray], scores: np.ndarray | None = None) -> tuple[float, float]:
    from cl_bench.commands.train_one import aurocs

    image, pixel = aurocs(p["scores"] if scores is None else scores, p["maps"], p["labels"],
                          p["masks"])
    return pixel, image


def compare_patchcore(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Fit both per category; print and return ``{category: {column: value}}``."""
    from cl_bench.commands.train_one import parse_options
    from cl_bench.data import MVTecDataset, list_categories
    from strategies.detectors import build_detector
    from strategies.teachers.backbones import build_teacher

    root = args.root
    categories = list_categories(root) if args.categories == "all" else [
        c.strip() for c in args.categories.split(",") if c.strip()]
    options = {"coreset_ratio": args.coreset_ratio, **parse_options(args.option)}
    teacher = build_teacher("efficientnet_lite0", "imagenet")
    print(f"\n## PatchCore vs anomalib PatchCore: {root}, {len(categories)} categories, "
          f"{args.image_size} px, teacher efficientnet_lite0 (offline ImageNet weights), levels "
          f"2+3 = {', '.join(TIMM_PATCHCORE_LAYERS)}, coreset ratio {args.coreset_ratio}, "
          f"batch {args.batch_size}, seed {args.seed}; our options {options}")
    columns = ("a_px", "o_px", "a_img", "a_img_max", "o_img", "bank", "diff", "a_s", "o_s")
    print(f"{'category':<12} {'anomalib px':>11} {'ours px':>8} {'anomalib img':>12} "
          f"{'a img (max)':>11} {'ours img':>8} {'bank a/o':>10} {'teacher diff':>12} "
          f"{'fit+test s a/o':>15}")
    table: dict[str, dict[str, float]] = {}
    for category in categories:
        train_set = MVTecDataset(root, category, "train", args.image_size)
        test_set = MVTecDataset(root, category, "test", args.image_size)
        loader = DataLoader(train_set, batch_size=args.batch_size)
        theirs = anomalib_patchcore(teacher)
        probe = next(iter(DataLoader(test_set, batch_size=args.batch_size)))[0]
        diff = teacher_difference(teacher, theirs, probe)
        ours = build_detector("patchcore", "efficientnet_lite0", "imagenet", **options)

        start = time.perf_counter()
        fit_anomalib(theirs, loader, args.coreset_ratio, args.seed)

        p_a = predictions(lambda images, m=theirs: _anomalib_predict(m, images), test_set,
                          args.batch_size)
        a_s = time.perf_counter() - start
        start = time.perf_counter()
        fit_ours(ours, loader, args.seed)

        p_o = predictions(lambda images, d=ours: _our_predict(d, images), test_set,
                          args.batch_size)
        o_s = time.perf_counter() - start
        a_px, a_img = _aurocs(p_a)
        _, a_img_max = _aurocs(p_a, p_a["maps"].reshape(len(p_a["maps"]), -1).max(axis=1))
        o_px, o_img = _aurocs(p_o)
        bank = f"{theirs.memory_bank.shape[0]}/{ours.memory_bank.shape[0]}"
        row = dict(zip(columns, (a_px, o_px, a_img, a_img_max, o_img,
                                 float(ours.memory_bank.shape[0]), diff, a_s, o_s), strict=True))
        table[category] = row
        print(f"{category:<12} {a_px:>11.3f} {o_px:>8.3f} {a_img:>12.3f} {a_img_max:>11.3f} "
              f"{o_img:>8.3f} {bank:>10} {diff:>12.1e} {a_s:>7.1f}/{o_s:<7.1f}", flush=True)
    means = {c: float(np.nanmean([table[k][c] for k in table])) for c in columns[:5]}
    print(f"{'mean':<12} {means['a_px']:>11.3f} {means['o_px']:>8.3f} {means['a_img']:>12.3f} "
          f"{means['a_img_max']:>11.3f} {means['o_img']:>8.3f}")
    print(f"mean pixel AUROC ours - anomalib = {means['o_px'] - means['a_px']:+.4f} (goal: "
          f"|difference| <= 0.01); image AUROC ours - anomalib (its reweighted score) = "
          f"{means['o_img'] - means['a_img']:+.4f}, - anomalib map max = "
          f"{means['o_img'] - means['a_img_max']:+.4f}")
    return table


def _median_seconds(fn, repeat: int) -> float:
    fn()  # untimed warm-up
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def compare_nn_search(args: argparse.Namespace) -> None:
    """cdist in chunks against faiss IndexFlatL2 on random features of PatchCore's sizes."""
    from strategies.detectors.memory_bank import nearest_neighbor_distances

    try:
        import faiss
    except ImportError as exc:
        print(f"\n## nearest-neighbour search: faiss is not importable ({exc}); cdist only")
        faiss = None
    dim, queries_n = args.nn_dim, args.nn_queries
    gen = torch.Generator().manual_seed(0)
    queries = torch.randn(queries_n, dim, generator=gen)
    print(f"\n## nearest-neighbour search: {queries_n} queries x D={dim}, float32, "
          f"{torch.get_num_threads()} torch threads"
          + (f", faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads)"
             if faiss else "") + f", median of {args.repeat}")
    print(f"{'bank rows':>10} {'torch s':>9} {'faiss s':>9} {'faiss/torch':>11} "
          f"{'max |d diff|':>12}")
    for rows in (int(r) for r in args.nn_banks.split(",")):
        bank = torch.randn(rows, dim, generator=gen)
        ours = _median_seconds(lambda b=bank: nearest_neighbor_distances(queries, b), args.repeat)
        line = f"{rows:>10} {ours:>9.4f}"
        if faiss is not None:
            index = faiss.IndexFlatL2(dim)
            index.add(bank.numpy())
            q = queries.numpy()
            theirs = _median_seconds(lambda i=index, q=q: i.search(q, 1), args.repeat)
            d_faiss = np.sqrt(np.maximum(index.search(q, 1)[0][:, 0], 0))
            d_ours = nearest_neighbor_distances(queries, bank)[0].numpy()
            line += (f" {theirs:>9.4f} {theirs / ours:>11.2f} "
                     f"{float(np.abs(d_faiss - d_ours).max()):>12.1e}")
        print(line, flush=True)


def run_patchcore(args: argparse.Namespace) -> None:
    if args.root is not None:
        compare_patchcore(args)
    if args.nn_bench:
        compare_nn_search(args)
