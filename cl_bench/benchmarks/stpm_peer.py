"""Our STPM against anomalib's STFPM, trained identically: ``cl-bench bench anomalib --mode
accuracy`` (see :mod:`cl_bench.benchmarks.anomalib_compare`).

One model per category. Both contenders get the same frozen teacher (our offline
EfficientNet-Lite0, levels at strides 4, 8, 16: MBConv blocks 2, 4, 10), the same training
images in the same shuffled order, the same epochs, batch size and optimizer (SGD, the STPM
paper's lr 0.4, momentum 0.9, weight decay 1e-4 unless told otherwise), and the same test images.

anomalib's side is its own code: ``STFPMModel`` built on timm's ``tf_efficientnet_lite0``
(TensorFlow "same" padding, like the TF-ported weights), layers ``blocks.1``, ``blocks.2``,
``blocks.4`` (the same three levels), its student as timm initialises it, ``STFPMLoss`` and its
anomaly map (product of the levels' ``0.5 * ||t^ - s^||^2``, no smoothing). Our teacher's
weights are copied into anomalib's teacher (by position, every tensor's shape checked), and the
two teachers' features are compared on the test images before training: a copy that does not
reproduce our features exactly stops the benchmark.

AUROC: scikit-learn ``roc_auc_score`` on image scores (map maximum) and on all test pixels.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from cl_bench.errors import RunError

#: timm's feature stages of tf_efficientnet_lite0 at strides 4, 8, 16 = our MBConv blocks 2, 4, 10
TIMM_LAYERS = ("blocks.1", "blocks.2", "blocks.4")
TIMM_BACKBONE = "tf_efficientnet_lite0"
#: the largest |anomalib teacher - our teacher| feature difference accepted after the copy
TEACHER_TOLERANCE = 1e-4


def copy_teacher_weights(ours: nn.Module, timm_extractor: nn.Module) -> None:
    """Copy our EfficientNet-Lite0 teacher's tensors into timm's, in order, shapes checked.

    Both list the stem, then the blocks in order, each block's convolutions and BatchNorms in
    the same order (lukemelas ``_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2``
    = timm ``conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3``); timm's extra stages after block 10
    are not used by the three levels and keep their values.
    """
    source = list(ours.state_dict().items())
    target = timm_extractor.state_dict()
    names = list(target)
    if len(names) < len(source):
        raise RunError(f"timm {TIMM_BACKBONE} has fewer tensors ({len(names)}) than our teacher "
                       f"({len(source)}); cannot copy the weights")
    for (ours_name, value), name in zip(source, names, strict=False):
        if tuple(target[name].shape) != tuple(value.shape):
            raise RunError(f"teacher weight copy: our {ours_name} {tuple(value.shape)} does not "
                           f"fit timm's {name} {tuple(target[name].shape)}")
        target[name] = value.clone()
    timm_extractor.load_state_dict(target)


def anomalib_stfpm(teacher: nn.Module) -> nn.Module:
    """anomalib's ``STFPMModel`` on timm's Lite0 with ``teacher``'s weights in its teacher; the
    student initialised by timm from the current torch seed."""
    from anomalib.models.image.stfpm.torch_model import STFPMModel

    from cl_bench.benchmarks.offline_timm import timm_without_pretrained

    with timm_without_pretrained():
        model = STFPMModel(layers=list(TIMM_LAYERS), backbone=TIMM_BACKBONE)
    copy_teacher_weights(teacher, model.teacher_model.feature_extractor)
    return model


def check_teachers(ours: nn.Module, anomalib_model: nn.Module, images: torch.Tensor) -> float:
    """The largest absolute difference between the two teachers' features on ``images``."""
    ours.eval()
    with torch.no_grad():
        mine = ours(images)
        theirs = list(anomalib_model.teacher_model(images).values())
    worst = max(float((a - b).abs().max()) for a, b in zip(mine, theirs, strict=True))
    if worst > TEACHER_TOLERANCE:
        raise RunError(f"anomalib's teacher with our weights differs from ours by {worst:.2e} "
                       f"(> {TEACHER_TOLERANCE}): the weight copy or the padding does not match")
    return worst


class Trainee:
    """One contender: its trainable parameters, its loss on a batch and its (maps, scores)."""

    def __init__(self, label: str, model: nn.Module, params,
                 loss: Callable[[torch.Tensor], torch.Tensor],
                 predict: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.label, self.model, self.params = label, model, list(params)
        self.loss, self.predict = loss, predict


def anomalib_trainee(model: nn.Module) -> Trainee:
    from anomalib.models.image.stfpm.loss import STFPMLoss

    criterion = STFPMLoss()

    def predict(images: torch.Tensor):
        out = model(images)
        return out.anomaly_map, out.pred_score

    return Trainee("anomalib STFPM", model, model.student_model.parameters(),
                   lambda images: criterion(*model(images)), predict)


def our_trainee(detector: nn.Module, label: str = "ours STPM") -> Trainee:
    def predict(images: torch.Tensor):
        maps = detector.anomaly_map(images)
        return maps, detector.image_scores(maps)

    return Trainee(label, detector, detector.trainable_parameters(),
                   lambda images: detector.loss(images).total, predict)


def train(trainee: Trainee, dataset, args: argparse.Namespace, seed: int) -> float:
    """SGD for ``args.epochs`` epochs over ``dataset`` shuffled by ``seed``; returns seconds."""
    from strategies.training.optimizers import build_optimizer

    optimizer = build_optimizer(trainee.params, "sgd", lr=args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay, fused=False)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    for _ in range(args.epochs):
        trainee.model.train()
        for images, _, _ in loader:
            loss = trainee.loss(images)
            if not torch.isfinite(loss):
                raise RunError(f"{trainee.label}: the training loss became {float(loss)}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def evaluate(trainee: Trainee, dataset, batch_size: int) -> tuple[float, float]:
    """(pixel AUROC, image AUROC) on ``dataset``."""
    from cl_bench.training import image_and_pixel_auroc

    trainee.model.eval()
    scores, maps, labels, masks = [], [], [], []
    for images, label, mask in DataLoader(dataset, batch_size=batch_size):
        amap, score = trainee.predict(images)
        maps.append(amap[:, 0].float().numpy())
        scores.append(score.reshape(-1).float().numpy())
        labels.append(label.numpy())
        masks.append(mask[:, 0].numpy())
    image, pixel = image_and_pixel_auroc(np.concatenate(scores), np.concatenate(maps),
                                         np.concatenate(labels), np.concatenate(masks))
    return pixel, image


def compare_accuracy(args: argparse.Namespace) -> dict[str, dict[str, tuple[float, float]]]:
    """Train both contenders per category; print and return {category: {label: (px, img)}}."""
    from cl_bench.cli_options import parse_options
    from cl_bench.data import MVTecDataset, list_categories
    from strategies.detectors import build_detector
    from strategies.teachers.backbones import build_teacher

    root = args.root
    categories = list_categories(root) if args.categories == "all" else [
        c.strip() for c in args.categories.split(",") if c.strip()]
    teacher = build_teacher("efficientnet_lite0", "imagenet")
    options = parse_options(args.option)
    print(f"\n## STPM vs anomalib STFPM: {root}, {len(categories)} categories, "
          f"{args.image_size} px, teacher efficientnet_lite0 (offline ImageNet weights), "
          f"{args.epochs} epochs, batch {args.batch_size}, SGD lr {args.lr} momentum "
          f"{args.momentum} weight decay {args.weight_decay}, seed {args.seed}"
          + (f", our options {options}" if options else ""))
    header = (f"{'category':<12} {'anomalib px':>11} {'ours px':>8} {'anomalib img':>12} "
              f"{'ours img':>8} {'teacher diff':>12} {'train s a/o':>12}")
    print(header)
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for category in categories:
        train_set = MVTecDataset(root, category, "train", args.image_size)
        test_set = MVTecDataset(root, category, "test", args.image_size)
        torch.manual_seed(args.seed)
        theirs = anomalib_stfpm(teacher)
        probe = next(iter(DataLoader(test_set, batch_size=args.batch_size)))[0]
        diff = check_teachers(teacher, theirs, probe)
        torch.manual_seed(args.seed)
        ours = build_detector("stpm", backbone="efficientnet_lite0", weights="imagenet",
                              **options)
        row = {}
        seconds = []
        for trainee in (anomalib_trainee(theirs), our_trainee(ours)):
            seconds.append(train(trainee, train_set, args, args.seed))
            row[trainee.label] = evaluate(trainee, test_set, args.batch_size)
        table[category] = row
        (a_px, a_img), (o_px, o_img) = row["anomalib STFPM"], row["ours STPM"]
        print(f"{category:<12} {a_px:>11.3f} {o_px:>8.3f} {a_img:>12.3f} {o_img:>8.3f} "
              f"{diff:>12.1e} {seconds[0]:>5.1f}/{seconds[1]:<5.1f}", flush=True)
    means = {label: np.nanmean([table[c][label] for c in table], axis=0)
             for label in ("anomalib STFPM", "ours STPM")}
    (a_px, a_img), (o_px, o_img) = means["anomalib STFPM"], means["ours STPM"]
    print(f"{'mean':<12} {a_px:>11.3f} {o_px:>8.3f} {a_img:>12.3f} {o_img:>8.3f}")
    print(f"mean pixel AUROC ours - anomalib = {o_px - a_px:+.3f} (goal: |difference| <= 0.01); "
          f"image AUROC {o_img - a_img:+.3f}")
    return table
