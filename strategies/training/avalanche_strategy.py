"""The Avalanche strategy that trains any knowledge-distillation detector.

Avalanche 0.6 has no template for unsupervised training, so :class:`DistillationStrategy`
subclasses ``SupervisedTemplate`` and keeps its ``criterion(output, y)`` contract: the model's
forward returns the teacher and student features, and :class:`DetectorCriterion` turns them into
the detector's loss, ignoring ``y``. Stock plugins that call ``strategy._criterion(model(x), y)``
(EWC's importance estimation) therefore work unchanged. In evaluation the criterion is zero (test
sets hold defects) and the forward pass also leaves the anomaly maps and image scores on the
strategy (``mb_anomaly_map``, ``mb_image_score``, ``mb_mask``) for the metric plugins, the
pattern Avalanche's own object-detection template uses for its predictions.

Gradient-free detectors (``detector.learns_without_gradients``, e.g. PatchCore's memory bank)
take the other path through the same strategy: no optimizer is built, and each experience is
one pass in which ``detector.fit`` receives the training dataloader's images (including any
replayed ones); the epoch hooks fire once, so progress and plugins see one "epoch". Evaluation,
the records, checkpoints (the learnt state is in ``state_dict()``) and resume are the same.
Plugins that act on the backward pass or the update (EWC, SI, student distillation) would do
nothing there and are refused.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import torch
from avalanche.training.plugins import EvaluationPlugin, SupervisedPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor, nn
from torch.utils.data import DataLoader

from strategies.detectors.base import AnomalyDetector, DetectorOutput
from strategies.errors import DivergedError, StrategiesError
from strategies.training.schedules import Schedule, build_scheduler


class DetectorCriterion(nn.Module):
    """``criterion(output, y)``: the detector's training loss; ``y`` is ignored.

    The detector is held in a plain list so the criterion does not register it a second time.
    """

    def __init__(self, detector: AnomalyDetector) -> None:
        super().__init__()
        self._detector = [detector]

    def forward(self, output: DetectorOutput, y: Tensor | None = None) -> Tensor:
        return self._detector[0].compute_loss(output).total


def _images_only(dataset, batch_size: int) -> Iterator[Tensor]:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        yield batch[0]


#: plugin hooks that only act in the gradient loop: they never fire for a gradient-free detector
GRADIENT_HOOKS = ("before_backward", "after_backward", "before_update", "after_update",
                  "before_training_iteration")


def gradient_loop_hooks(plugin: SupervisedPlugin) -> list[str]:
    """The :data:`GRADIENT_HOOKS` that ``plugin`` overrides (empty for a plugin that works with
    a gradient-free detector, e.g. replay, which only swaps the dataloader)."""
    return [hook for hook in GRADIENT_HOOKS
            if getattr(type(plugin), hook, None) is not getattr(SupervisedPlugin, hook, None)]


class DistillationStrategy(SupervisedTemplate):
    """Trains an :class:`AnomalyDetector` on one experience (category) after another.

    The optimizer holds the students' (and the loss weighting's) parameters only: the teacher is
    hidden from ``parameters()``. ``reset_optimizer`` clears the optimizer state at the start of
    every experience (the default; each task starts from a fresh Adam state).

    ``lr_schedule`` (:class:`strategies.training.schedules.Schedule`): at the start of every
    experience the learning rate is set back to the optimizer's initial one and a fresh scheduler
    covers ``train_epochs x len(dataloader)`` steps; it is stepped after every optimizer step.
    ``constant`` (the default) builds none.
    """

    def __init__(
        self,
        *,
        model: AnomalyDetector,
        optimizer: torch.optim.Optimizer | None,
        train_mb_size: int = 8,
        train_epochs: int = 1,
        eval_mb_size: int = 16,
        device: str | torch.device = "cpu",
        plugins: Sequence[SupervisedPlugin] | None = None,
        evaluator: EvaluationPlugin | None = None,
        reset_optimizer: bool = True,
        autocast_bf16: bool = False,
        channels_last: bool = False,
        lr_schedule: Schedule | None = None,
        **kwargs,
    ) -> None:
        self.gradient_free = bool(getattr(model, "learns_without_gradients", False))
        if self.gradient_free:
            for plugin in plugins or []:
                hooks = gradient_loop_hooks(plugin)
                if hooks:
                    raise StrategiesError(
                        f"{type(plugin).__name__} acts in the gradient loop ({', '.join(hooks)}),"
                        f" but detector {getattr(model, 'name', type(model).__name__)!r} learns "
                        "without gradients: the strategy would do nothing. Use naive, replay, "
                        "joint or independent with this detector")
            optimizer = None
            train_epochs = 1  # one fit pass per task
        elif optimizer is None:
            raise StrategiesError("a detector trained by gradients needs an optimizer")
        self.reset_optimizer = reset_optimizer
        self.lr_schedule = lr_schedule or Schedule()
        self.lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self._base_lrs = ([] if optimizer is None
                          else [group["lr"] for group in optimizer.param_groups])
        self.autocast_bf16 = autocast_bf16
        self.channels_last = channels_last
        self.pending_optimizer_state: dict | None = None
        self.mb_anomaly_map: Tensor | None = None
        self.mb_image_score: Tensor | None = None
        self.mb_image_score_uncalibrated: Tensor | None = None
        self.mb_mask: Tensor | None = None
        self.epoch_loss_parts: dict[str, float] = {}
        self._loss_sums: dict[str, float] = defaultdict(float)
        self._loss_count = 0
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=DetectorCriterion(model),
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=list(plugins or []),
            evaluator=evaluator if evaluator is not None else EvaluationPlugin(loggers=[]),
            eval_every=-1,
            **kwargs,
        )

    @property
    def detector(self) -> AnomalyDetector:
        return self.model  # type: ignore[return-value]

    # ---- forward and loss -----------------------------------------------------------------
    def _autocast(self):
        """bf16 autocast on CUDA when asked for (a no-op context otherwise)."""
        enabled = self.autocast_bf16 and torch.device(self.device).type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    def _unpack_minibatch(self) -> None:
        super()._unpack_minibatch()
        if self.channels_last:
            self.mbatch[0] = self.mbatch[0].contiguous(memory_format=torch.channels_last)

    def eval_scorer(self):
        """The first plugin with ``score_batch(strategy, images) -> DetectorOutput`` (it scores
        in evaluation instead of the detector, e.g. routing between experts), or None."""
        return next((p for p in self.plugins if callable(getattr(p, "score_batch", None))), None)

    def forward(self) -> DetectorOutput:
        scorer = None if self.is_training else self.eval_scorer()
        if scorer is not None:
            output = scorer.score_batch(self, self.mb_x)
        else:
            with self._autocast():
                output = self.model(self.mb_x)
        if not self.is_training:
            # outside autocast: maps and their smoothing in float32 (maps.py enforces it too);
            # a scorer may hand back maps it computed itself (each image by its own expert)
            maps = getattr(output, "anomaly_map", None)
            if maps is None:
                maps = self.detector.anomaly_map_from_output(output,
                                                             tuple(self.mb_x.shape[-2:]))
            self.mb_anomaly_map = maps.float()
            self.mb_image_score = self.detector.image_scores(self.mb_anomaly_map)
            # a calibrating scorer (strategies.continual.calibration) also hands back the raw scores
            self.mb_image_score_uncalibrated = getattr(output, "uncalibrated_image_score", None)
            self.mb_mask = self.mbatch[2] if len(self.mbatch) > 2 else None
        return output

    def eval(self, exp_list, **kwargs):
        """Avalanche's evaluation under ``torch.inference_mode`` (no autograd bookkeeping)."""
        with torch.inference_mode():
            return super().eval(exp_list, **kwargs)

    def criterion(self) -> Tensor:
        if not self.is_training:
            return torch.zeros((), device=self.device)
        with self._autocast():
            result = self.detector.compute_loss(self.mb_output)
        for key, value in result.parts.items():
            self._loss_sums[key] += float(value)
        self._loss_count += 1
        return result.total

    def backward(self) -> None:
        loss = float(self.loss.detach())
        if not math.isfinite(loss):
            index = getattr(self.experience, "current_experience", None)
            task = "?" if index is None else index + 1  # 1-based, as the console counts tasks
            raise DivergedError(
                f"the training loss became {loss} in task {task}, epoch "
                f"{self.clock.train_exp_epochs + 1} "
                f"(iteration {self.clock.train_epoch_iterations}); "
                "lower train.optimizer.lr or check the input data. Results of the tasks already "
                "completed are kept."
            )
        super().backward()

    def make_optimizer(self, **kwargs) -> None:
        # Avalanche passes reset_optimizer_state=False at every task boundary; honour ours.
        kwargs["reset_optimizer_state"] = (kwargs.get("reset_optimizer_state", False)
                                           or self.reset_optimizer)
        super().make_optimizer(**kwargs)

    def check_model_and_optimizer(self, **kwargs) -> None:
        if self.gradient_free:
            self.model = self.model_adaptation()
            self.pending_optimizer_state = None
            return
        super().check_model_and_optimizer(**kwargs)
        # Set when a run is resumed: continue with the optimizer state the interrupted run had,
        # unless the uninterrupted run would have reset it at this task boundary anyway.
        if self.pending_optimizer_state is not None and not self.reset_optimizer:
            self.optimizer.load_state_dict(self.pending_optimizer_state)
        self.pending_optimizer_state = None
        self._restart_schedule()

    def _restart_schedule(self) -> None:
        """The learning rate back to its initial value and a new scheduler for this task."""
        for group, lr in zip(self.optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = lr
            group.pop("initial_lr", None)
        self.lr_scheduler = None
        if self.lr_schedule.name != "constant":
            total = self.train_epochs * len(self.dataloader)
            self.lr_scheduler = build_scheduler(self.optimizer, self.lr_schedule, total)

    def optimizer_step(self) -> None:
        super().optimizer_step()
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()

    # ---- gradient-free detectors ------------------------------------------------------------
    def _train_exp(self, experience, eval_streams=None, **kwargs) -> None:
        if not self.gradient_free:
            super()._train_exp(experience, eval_streams, **kwargs)
            return
        self._before_training_epoch(**kwargs)
        self.detector.eval()  # a fit is inference of the teacher, then bookkeeping
        with torch.no_grad(), self._autocast():
            self.detector.fit(self._training_images())
        self.detector.train()
        self._after_training_epoch(**kwargs)

    def _training_images(self) -> Iterator[Tensor]:
        """The images of this experience's training dataloader (replay included), on device."""
        for mbatch in self.dataloader:
            images = mbatch[0].to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images

    # ---- detector hooks ---------------------------------------------------------------------
    def _before_training_epoch(self, **kwargs) -> None:
        self._loss_sums = defaultdict(float)
        self._loss_count = 0
        super()._before_training_epoch(**kwargs)

    def _after_training_epoch(self, **kwargs) -> None:
        count = max(self._loss_count, 1)
        self.epoch_loss_parts = {k: v / count for k, v in self._loss_sums.items()}
        self.detector.on_epoch_end()
        super()._after_training_epoch(**kwargs)

    def _after_training_exp(self, **kwargs) -> None:
        # Calibrate on the current task's defect-free training images (no augmentation, no
        # replayed images) before plugins such as EWC snapshot the model.
        self.detector.eval()
        self.detector.calibrate(
            x.to(self.device) for x in _images_only(self.experience.dataset, self.eval_mb_size)
        )
        self.detector.train()
        super()._after_training_exp(**kwargs)
