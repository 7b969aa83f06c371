"""Per-expert score calibration for task-agnostic pooling (``routing`` and ``independent``).

Several experts (one detector per task) each put their anomaly maps on their own scale: an
STPM expert of a texture may give normal pixels a cosine distance of 0.3 where an expert of an
object gives 0.05. Pooled, task-agnostic image AUROC ranks all test images by one score, so an
expert with a high baseline pushes its *normal* images above another expert's defects: the
pooled AUROC falls below the mean per-task AUROC even when every image meets its own expert.

Calibration puts every expert's map on one scale before pooling, from statistics of that
expert's own *normal training images only*. A fraction ``calibration_holdout`` of each task's
training images is held out of training (:func:`holdout_split`, seeded by the run's seed and the
task index) and the trained expert maps them; over all their pixels it estimates a location
``mu_e`` and a scale ``s_e`` (:func:`map_statistics`) and every map it gives afterwards is

    ``m'(x) = (m(x) - mu_e) / s_e``,

with ``zscore``: ``mu_e`` the mean and ``s_e`` the standard deviation of the held-out pixels;
``quantile``: ``mu_e`` their median and ``s_e = q_0.99 - median`` (robust to a few bright
pixels). The image score is then derived from the normalised map exactly as the detector does
(its maximum, :meth:`AnomalyDetector.image_scores`), so maps and image scores share the scale;
since the map is mapped affinely with ``s_e > 0``, ``max m' = (max m - mu_e) / s_e`` and every
ranking *within* one expert (per-task image and pixel metrics of the independent oracle) is
unchanged. Pixel statistics rather than image-score statistics: with 10 training images per
task (mvtec_ad_mini) two held-out images give two image scores but ~3e4 map values.

``image_zscore`` instead takes ``mu_e`` and ``s_e`` (sample standard deviation) of the held-out
images' *image scores* ``s(x) = max m(x)``: pooled AUROC ranks image scores, so aligning the
first two moments of each expert's normal image scores is what pooling needs; the pixel
statistics fix only the pixels' scale, and the maximum of a map need not follow it. It needs
several held-out images per task, hence cross-fitting.

**Cross-fitting** (``calibration_folds`` K >= 2). A single held-out part costs training images
and leaves one or two images to estimate from. With K folds the expert itself trains on *all*
its task's images (the same expert as without calibration, to the bit: the cross-fit runs after
it with the random state saved and restored), and for each fold k a copy of the detector,
started from the expert's own starting point (the previous expert with ``init: warm``, the
untrained students otherwise) and trained the same way on the other folds, maps fold k. Every
training image is then mapped once by a model that did not see it, and the statistics come
from all of them: the cross-fitting of conformal prediction (Vovk, "Cross-conformal
predictors", Ann. Math. Artif. Intell. 74, 2015) applied to the normal-score distribution.
A fold copy gets as many optimizer steps as the expert (its epochs scaled by the ratio of
batches per epoch), since fewer steps would leave it under-trained and its normal scores
higher than the expert's. K extra trainings per task; a gradient-free detector (PatchCore)
refits its memory K times, which is cheap.

Held-out images, not the training images themselves: an expert maps the images it was fitted on
lower than unseen normal images (a PatchCore bank holds their own patches), by an amount that
differs between experts. No test image is ever used.

The normalisation is the z-score and median/quantile normalisation of multi-expert score fusion
(Jain, Nandakumar & Ross, "Score normalization in multimodal biometric systems", Pattern
Recognition 38(12), 2005), applied per expert the way anomaly detection normalises per class
from normal validation images (e.g. the per-category normalisation of anomalib, Akcay et al.,
ICIP 2022).
"""

from __future__ import annotations

import copy
import math
import random
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# the options live in a module without torch (the strategy registry declares them for list and
# report); re-exported here
from strategies.continual.calibration_options import CALIBRATION_KINDS as CALIBRATION_KINDS
from strategies.continual.calibration_options import IMAGE_LEVEL_KINDS as IMAGE_LEVEL_KINDS
from strategies.continual.calibration_options import UPPER_QUANTILE as UPPER_QUANTILE
from strategies.continual.calibration_options import CalibrationKind as CalibrationKind
from strategies.continual.calibration_options import CalibrationOptions as CalibrationOptions
from strategies.continual.plugin_state import cpu_state_copy
from strategies.detectors.base import AnomalyDetector, DetectorOutput
from strategies.errors import StrategiesError


@dataclass
class ScoredOutput(DetectorOutput):
    """A :class:`DetectorOutput` whose anomaly maps are already computed (by each image's own
    expert, calibrated when asked); the strategy uses ``anomaly_map`` instead of its detector's
    map function. ``uncalibrated_image_score``: the image score of the raw map (B,), kept for
    the paired "before calibration" metrics (None without calibration)."""

    anomaly_map: Tensor | None = None
    uncalibrated_image_score: Tensor | None = None


@dataclass(frozen=True)
class MapStats:
    """Location and scale of one expert's anomaly-map values on held-out normal images."""

    location: float
    scale: float

    def apply(self, maps: Tensor) -> Tensor:
        """``(maps - location) / scale``."""
        return (maps - self.location) / self.scale

    def as_list(self) -> list[float]:
        return [self.location, self.scale]


def holdout_split(n: int, fraction: float, seed: int, task: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices) of a task's ``n`` training images:
    ``max(1, round(fraction * n))`` held out, drawn with ``numpy.random.default_rng([seed,
    task])`` (the same images for every detector and strategy of a seed)."""
    held = max(1, round(fraction * n))
    if held >= n:
        raise StrategiesError(
            f"calibration_holdout {fraction} holds out {held} of task {task}'s {n} training "
            "images and leaves none to train on; lower calibration_holdout")
    order = np.random.default_rng([seed, task]).permutation(n)
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())


def crossfit_folds(n: int, folds: int, seed: int, task: int) -> list[list[int]]:
    """The ``folds`` disjoint parts (sorted indices) of a task's ``n`` training images, sizes
    differing by at most one, drawn with ``numpy.random.default_rng([seed, task])``."""
    if folds < 2 or folds > n:
        raise StrategiesError(
            f"calibration_folds {folds} for task {task}'s {n} training images: use 2 <= K <= "
            f"{n} (each fold needs an image, and each fold copy images to train on)")
    order = np.random.default_rng([seed, task]).permutation(n)
    return [sorted(part.tolist()) for part in np.array_split(order, folds)]


def map_statistics(kind: CalibrationKind, maps: Iterable[Tensor], task: int,
                   image_scores: Callable[[Tensor], Tensor] | None = None) -> MapStats:
    """The :class:`MapStats` of ``kind`` over every value of ``maps`` (pixel kinds) or over the
    image scores ``image_scores(m)`` of every map (``image_zscore``; default: the maximum)
    (module docstring)."""
    maps = list(maps)
    if kind in IMAGE_LEVEL_KINDS:
        score = image_scores or AnomalyDetector.image_scores
        values = torch.cat([score(m.detach().float()).flatten().cpu() for m in maps])
        values = values.double().numpy()
        if values.size < 2:
            raise StrategiesError(
                f"calibration {kind!r} of task {task}: {values.size} held-out image score, a "
                "scale needs at least 2; set calibration_folds >= 2")
        location, scale = float(values.mean()), float(values.std(ddof=1))
        return _checked(kind, location, scale, task)
    values = torch.cat([m.detach().float().flatten().cpu() for m in maps]).double().numpy()
    if kind == "zscore":
        location, scale = float(values.mean()), float(values.std())
    elif kind == "quantile":  # numpy: torch.quantile refuses more than 2^24 values
        median, upper = np.quantile(values, [0.5, UPPER_QUANTILE])
        location, scale = float(median), float(upper - median)
    else:
        raise StrategiesError(f"calibration {kind!r}: use one of {', '.join(CALIBRATION_KINDS)}")
    return _checked(kind, location, scale, task)


def _checked(kind: str, location: float, scale: float, task: int) -> MapStats:
    if not (math.isfinite(location) and math.isfinite(scale) and scale > 0):
        raise StrategiesError(
            f"calibration {kind!r} of task {task}: the held-out training images' anomaly maps "
            f"give location {location} and scale {scale} (their maps are constant or not "
            "finite); use calibration: none or more held-out images (calibration_holdout)")
    return MapStats(location, scale)


class HoldoutCalibration:
    """The calibration of one run's experts: holds each task's images out of training (or
    cross-fits, ``folds`` >= 2), then measures the trained expert's statistics (used by the
    routing and independent plugins).

    Call :meth:`remember_start` from ``before_training_exp`` once the detector holds the state
    the task's training starts from, :meth:`split` from ``after_train_dataset_adaptation`` (with
    a hold-out the training set shrinks to the kept images) and :meth:`measure` once the expert
    is trained; :attr:`stats` has one entry per measured task, in task order.
    """

    def __init__(self, kind: CalibrationKind, holdout: float, seed: int, folds: int = 0) -> None:
        if kind not in CALIBRATION_KINDS or kind == "none":
            raise StrategiesError(f"calibration {kind!r}: use one of "
                                  f"{', '.join(k for k in CALIBRATION_KINDS if k != 'none')}")
        if not 0.0 < holdout < 1.0:
            raise StrategiesError(f"calibration_holdout {holdout}: use a fraction in (0, 1)")
        if folds == 1 or folds < 0:
            raise StrategiesError(f"calibration_folds {folds}: use 0 (hold-out) or K >= 2")
        if kind in IMAGE_LEVEL_KINDS and folds < 2:
            raise StrategiesError(f"calibration {kind!r} needs calibration_folds >= 2")
        self.kind: CalibrationKind = kind
        self.holdout = holdout
        self.seed = seed
        self.folds = folds
        self.stats: list[MapStats] = []
        self._held = None  # hold-out: the held-out images of the task being trained
        self._start: dict[str, Tensor] | None = None  # cross-fit: the task's starting state
        self._train_set = None  # cross-fit: the task's training set (training transforms)
        self._eval_set = None  # cross-fit: the same images, evaluation transforms

    def remember_start(self, strategy) -> None:
        """Cross-fit: keep the detector's state the task's training starts from (the fold
        copies start there too)."""
        if self.folds >= 2:
            self._start = cpu_state_copy(strategy.detector.state_dict())

    def split(self, strategy) -> None:
        """Hold-out: train on the kept images only; keep the held-out ones (the task's own
        normal training images, evaluation transforms) for :meth:`measure`. Cross-fit: keep the
        whole training set for the fold copies."""
        task = int(strategy.experience.current_experience)
        dataset = strategy.experience.dataset
        eval_set = dataset.eval() if hasattr(dataset, "eval") else dataset
        if self.folds >= 2:
            self._train_set, self._eval_set = strategy.adapted_dataset, eval_set
            return
        keep, held = holdout_split(len(strategy.adapted_dataset), self.holdout, self.seed, task)
        strategy.adapted_dataset = strategy.adapted_dataset.subset(keep)
        self._held = eval_set.subset(held)

    @torch.no_grad()
    def _maps(self, strategy, dataset) -> list[Tensor]:
        from torch.utils.data import DataLoader

        detector = strategy.detector
        was_training = detector.training
        detector.eval()
        maps = []
        for batch in DataLoader(dataset, batch_size=strategy.eval_mb_size, shuffle=False):
            images = batch[0].to(strategy.device)
            with strategy._autocast():
                out = detector(images)
            maps.append(detector.anomaly_map_from_output(out, tuple(images.shape[-2:])).float())
        detector.train(was_training)
        return maps

    def measure(self, strategy) -> MapStats:
        """The trained detector's statistics on the held-out images (cross-fit: on every
        training image, each mapped by the fold copy that did not see it; the detector is left
        as the trained expert); appended to :attr:`stats` and returned."""
        task = int(strategy.experience.current_experience)
        if self.folds >= 2:
            maps = self._crossfit_maps(strategy, task)
        else:
            if self._held is None:
                raise StrategiesError("calibration: no held-out images for this task (split() "
                                      "was not called before training)")
            maps = self._maps(strategy, self._held)
            self._held = None
        stats = map_statistics(self.kind, maps, task, strategy.detector.image_scores)
        self.stats.append(stats)
        return stats

    def _crossfit_maps(self, strategy, task: int) -> list[Tensor]:
        if self._start is None or self._train_set is None:
            raise StrategiesError("calibration: cross-fit needs remember_start() and split() "
                                  "before training")
        detector = strategy.detector
        was_training = detector.training
        expert = cpu_state_copy(detector.state_dict())
        parts = crossfit_folds(len(self._train_set), self.folds, self.seed, task)
        maps: list[Tensor] = []
        with _saved_random_state():
            for k, held in enumerate(parts):
                keep = sorted(set(range(len(self._train_set))) - set(held))
                _seed_all(self.seed, task, k)
                detector.load_state_dict(self._start)
                train_fold_copy(strategy, self._train_set.subset(keep), len(self._train_set))
                maps += self._maps(strategy, self._eval_set.subset(held))
        detector.load_state_dict(expert)
        detector.train(was_training)
        self._start = self._train_set = self._eval_set = None
        return maps

    def state_dict(self) -> dict:
        return {"kind": self.kind, "holdout": self.holdout, "folds": self.folds,
                "stats": [s.as_list() for s in self.stats]}

    def load_state_dict(self, state: dict) -> None:
        state = {"folds": 0, **state}  # checkpoints written before cross-fitting existed
        for key in ("kind", "holdout", "folds"):
            if state[key] != getattr(self, key):
                raise ValueError(f"saved calibration has {key}={state[key]!r}, this run "
                                 f"{getattr(self, key)!r}; resume with the configuration the "
                                 "run started with")
        self.stats = [MapStats(float(a), float(b)) for a, b in state["stats"]]


class _saved_random_state:
    """Restores Python's, NumPy's and torch's (CPU and CUDA) random state on exit, so that the
    cross-fit leaves the rest of the run exactly as without it."""

    def __enter__(self) -> None:
        self._state = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
                       torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)

    def __exit__(self, *exc) -> None:
        py, np_state, cpu, cuda = self._state
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _seed_all(seed: int, task: int, fold: int) -> None:
    value = int(np.random.default_rng([seed, task, fold, 0xCA1]).integers(2**31))
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def fold_epochs(epochs: int, n_full: int, n_fold: int, batch_size: int) -> int:
    """Epochs that give a fold copy trained on ``n_fold`` images at least the optimizer steps of
    ``epochs`` epochs over ``n_full`` images: ``ceil(E * b(n_full) / b(n_fold))`` with
    ``b(n) = ceil(n / batch_size)`` batches per epoch (the last batch kept, as in training)."""
    def batches(n: int) -> int:
        return max(1, math.ceil(n / batch_size))

    return math.ceil(epochs * batches(n_full) / batches(n_fold))


def train_fold_copy(strategy, dataset, n_full: int) -> None:
    """Train ``strategy.detector`` (already holding the task's starting state) on ``dataset``
    as ``strategy`` trains its experts: a fresh optimizer of the same class and settings, the
    same learning-rate schedule, batch size and precision, and ``ceil(E * b_full / b_fold)``
    epochs for the expert's ``E`` (``b``: batches per epoch of the ``n_full`` images and of the
    fold's), so that the copy takes as many optimizer steps as the expert; the detector's own
    calibration on the fold's images follows, as after every task."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets

    from strategies.training.avalanche_strategy import DistillationStrategy

    detector = strategy.detector
    optimizer = None
    epochs = strategy.train_epochs
    if not getattr(strategy, "gradient_free", False):
        outer = strategy.optimizer
        base_lrs = getattr(strategy, "_base_lrs", None) or [g["lr"] for g in outer.param_groups]
        groups = []
        for group, lr in zip(outer.param_groups, base_lrs, strict=True):
            settings = {k: copy.deepcopy(v) for k, v in group.items()
                        if k not in ("params", "initial_lr")}
            groups.append({**settings, "params": group["params"], "lr": lr})
        optimizer = type(outer)(groups, **copy.deepcopy(outer.defaults))
        epochs = fold_epochs(epochs, n_full, len(dataset), strategy.train_mb_size)
    with warnings.catch_warnings():  # Avalanche warns that the copy's evaluator logs nothing
        warnings.filterwarnings("ignore", message="No loggers specified")
        nested = DistillationStrategy(
            model=detector, optimizer=optimizer, train_mb_size=strategy.train_mb_size,
            train_epochs=epochs, eval_mb_size=strategy.eval_mb_size, device=strategy.device,
            reset_optimizer=True, autocast_bf16=getattr(strategy, "autocast_bf16", False),
            channels_last=getattr(strategy, "channels_last", False),
            lr_schedule=getattr(strategy, "lr_schedule", None))
    nested.train(benchmark_from_datasets(train=[dataset]).train_stream[0])
    detector.eval()


def make_calibration(options: CalibrationOptions, seed: int) -> HoldoutCalibration | None:
    """The run's :class:`HoldoutCalibration`, or None for ``calibration: none``."""
    if options.calibration == "none":
        return None
    return HoldoutCalibration(options.calibration, options.calibration_holdout, seed,
                              options.calibration_folds)
