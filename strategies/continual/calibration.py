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

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# the options live in a module without torch (the strategy registry declares them for list and
# report); re-exported here
from strategies.continual.calibration_options import CALIBRATION_KINDS as CALIBRATION_KINDS
from strategies.continual.calibration_options import UPPER_QUANTILE as UPPER_QUANTILE
from strategies.continual.calibration_options import CalibrationKind as CalibrationKind
from strategies.continual.calibration_options import CalibrationOptions as CalibrationOptions
from strategies.detectors.base import DetectorOutput
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


def map_statistics(kind: CalibrationKind, maps: Iterable[Tensor], task: int) -> MapStats:
    """The :class:`MapStats` of ``kind`` over every value of ``maps`` (module docstring)."""
    values = torch.cat([m.detach().float().flatten().cpu() for m in maps]).double().numpy()
    if kind == "zscore":
        location, scale = float(values.mean()), float(values.std())
    elif kind == "quantile":  # numpy: torch.quantile refuses more than 2^24 values
        median, upper = np.quantile(values, [0.5, UPPER_QUANTILE])
        location, scale = float(median), float(upper - median)
    else:
        raise StrategiesError(f"calibration {kind!r}: use one of {', '.join(CALIBRATION_KINDS)}")
    if not (math.isfinite(location) and math.isfinite(scale) and scale > 0):
        raise StrategiesError(
            f"calibration {kind!r} of task {task}: the held-out training images' anomaly maps "
            f"give location {location} and scale {scale} (their maps are constant or not "
            "finite); use calibration: none or more held-out images (calibration_holdout)")
    return MapStats(location, scale)


class HoldoutCalibration:
    """The calibration of one run's experts: holds each task's images out of training, then
    measures the trained expert on them (used by the routing and independent plugins).

    Call :meth:`split` from ``after_train_dataset_adaptation`` (the training set shrinks to the
    kept images) and :meth:`measure` once the expert is trained; :attr:`stats` has one entry per
    measured task, in task order.
    """

    def __init__(self, kind: CalibrationKind, holdout: float, seed: int) -> None:
        if kind not in CALIBRATION_KINDS or kind == "none":
            raise StrategiesError(f"calibration {kind!r}: use zscore or quantile")
        if not 0.0 < holdout < 1.0:
            raise StrategiesError(f"calibration_holdout {holdout}: use a fraction in (0, 1)")
        self.kind: CalibrationKind = kind
        self.holdout = holdout
        self.seed = seed
        self.stats: list[MapStats] = []
        self._held = None  # the held-out images of the task being trained

    def split(self, strategy) -> None:
        """Train on the kept images only; keep the held-out ones (the task's own normal
        training images, evaluation transforms) for :meth:`measure`."""
        task = int(strategy.experience.current_experience)
        keep, held = holdout_split(len(strategy.adapted_dataset), self.holdout, self.seed, task)
        strategy.adapted_dataset = strategy.adapted_dataset.subset(keep)
        dataset = strategy.experience.dataset
        dataset = dataset.eval() if hasattr(dataset, "eval") else dataset
        self._held = dataset.subset(held)

    @torch.no_grad()
    def measure(self, strategy) -> MapStats:
        """The trained detector's map statistics on the held-out images; appended to
        :attr:`stats` and returned."""
        from torch.utils.data import DataLoader

        if self._held is None:
            raise StrategiesError("calibration: no held-out images for this task (split() was "
                                  "not called before training)")
        detector = strategy.detector
        was_training = detector.training
        detector.eval()
        maps = []
        for batch in DataLoader(self._held, batch_size=strategy.eval_mb_size, shuffle=False):
            images = batch[0].to(strategy.device)
            with strategy._autocast():
                out = detector(images)
            maps.append(detector.anomaly_map_from_output(out, tuple(images.shape[-2:])).float())
        detector.train(was_training)
        stats = map_statistics(self.kind, maps, int(strategy.experience.current_experience))
        self.stats.append(stats)
        self._held = None
        return stats

    def state_dict(self) -> dict:
        return {"kind": self.kind, "holdout": self.holdout,
                "stats": [s.as_list() for s in self.stats]}

    def load_state_dict(self, state: dict) -> None:
        for key in ("kind", "holdout"):
            if state[key] != getattr(self, key):
                raise ValueError(f"saved calibration has {key}={state[key]!r}, this run "
                                 f"{getattr(self, key)!r}; resume with the configuration the "
                                 "run started with")
        self.stats = [MapStats(float(a), float(b)) for a, b in state["stats"]]


def make_calibration(options: CalibrationOptions, seed: int) -> HoldoutCalibration | None:
    """The run's :class:`HoldoutCalibration`, or None for ``calibration: none``."""
    if options.calibration == "none":
        return None
    return HoldoutCalibration(options.calibration, options.calibration_holdout, seed)
