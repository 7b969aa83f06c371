"""The ``routing`` strategy: one expert per task, chosen at test time by a task router.

After each task the trained students (the detector's ``state_dict``; the frozen teacher is
shared and never stored) are kept as that task's *expert*, optionally in float16, and the task's
key is added to the :class:`~strategies.continual.routing.router.TaskRouter` from the teacher's
features of the task's training images. The next task trains from the previous expert (``init:
warm``, the default) or from the untrained initial students (``init: fresh``: then every expert is
trained exactly as the ``independent`` oracle trains its detector for that task).

A gradient-free detector (``detector.learns_without_gradients``, e.g. PatchCore) has no weights
to warm-start: its state is a memory of the data it was fitted on. Its expert t therefore always
starts from the unfitted detector (one bank per task, ``M_t = C_t``, whatever ``init`` says), so
that it holds task t's memory only and the experts' total memory is ``sum_t |C_t|``, as much as
naive's growing bank; with a warm start expert t would hold the cumulative bank
``C_0 ∪ ... ∪ C_t`` and the experts ``sum_t (T - t) |C_t|`` (``gradient_free_memory:
cumulative`` keeps that behaviour, for comparison).

In evaluation, :meth:`RoutingPlugin.score_batch` replaces the detector
(:meth:`strategies.training.avalanche_strategy.DistillationStrategy.forward` calls the first plugin
that has it): one teacher pass per batch serves routing and scoring (the teacher is read through the
teacher cache; without the run's cache a cache for the batch is attached for the call), each
image goes to the expert of its nearest key, and its features, anomaly map and image score come
from that expert (its own calibration included; with ``calibration`` its map is then put on the
common scale by the expert's held-out statistics, :mod:`strategies.continual.calibration`). Before
the first task is trained (the untrained row) there is no expert and the detector scores as for
every strategy.

**An unsure router** (``top_k`` = k > 1): the image is scored by the experts of its k nearest
tasks ``N_k(x)`` (by task distance) and keeps the one that finds it most normal,
``e*(x) = argmin_{e in N_k(x)} s_e(x)``, ``s(x) = s_{e*}(x) = min_{e in N_k(x)} s_e(x)``, with
that expert's map and features (ties: the nearer key). Reason: a normal image is normal for its
own task's expert, so when the keys cannot tell look-alike tasks apart, "normal if any nearby
task finds it normal" removes the false alarms a wrong expert raises on good images; the price
is that a defect one of the k experts misses is missed too, and k experts score each image.
k = 1 is the nearest-key rule (the same computation as without the option); k is capped at the
number of tasks seen. Task-identification accuracy then counts the expert that scored.

Task-identification counts (routed to its own task or not, good and defective images apart)
are kept per evaluated task for the tasks that have an expert; :meth:`eval_metrics` returns
them with the memory held, for the records (metric names in :data:`ROUTING_METRICS`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Literal

import torch
from avalanche.training.plugins import SupervisedPlugin
from torch import Tensor

from strategies.continual.calibration import HoldoutCalibration, ScoredOutput
from strategies.continual.plugin_state import cpu_state_copy
from strategies.continual.routing.diagnostics import DIAGNOSTIC_METRICS, RoutingDiagnostics
from strategies.continual.routing.router import RouterKind, TaskRouter, pooled_descriptor
from strategies.detectors.base import DetectorOutput
from strategies.teachers.teacher_cache import (
    CachedTeacher,
    FeatureStore,
    attach_teacher_cache,
    detach_teacher_cache,
)

#: metrics the plugin adds to a step's records: per seen task and pooled over the seen tasks,
#: then per seen task the misrouting diagnostics (:mod:`strategies.continual.routing.diagnostics`)
ROUTING_METRICS = ("task_id_acc", "task_id_acc_good", "task_id_acc_defective", "memory_mb",
                   *DIAGNOSTIC_METRICS)
_MB = 1024 * 1024


def _categories(experience) -> list[str] | None:
    """The category of each training image of ``experience`` when it holds several (a task of
    several categories gets one router key per category); None for one category."""
    categories = getattr(experience, "categories", None)
    if not categories or len(categories) < 2:
        return None
    return [str(c) for c in experience.dataset.category]


def _nbytes(tensors: Iterable[Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class RoutingPlugin(SupervisedPlugin):
    """Experts per task plus a task router (module docstring).

    ``router``: the key kind (:data:`strategies.continual.routing.router.ROUTER_KINDS`);
    ``init``: ``warm`` (each expert starts from the previous one) or ``fresh`` (from the
    untrained students); ``expert_dtype``: ``float32`` or ``float16`` (storage only: an expert is
    cast back to the detector's dtype when it scores); ``calibration``: None (raw maps) or the
    run's :class:`~strategies.continual.calibration.HoldoutCalibration` (one entry of statistics per
    expert, measured on the task's held-out training images); ``top_k``: how many nearest tasks'
    experts score each image, the lowest (calibrated) score kept (module docstring).
    """

    def __init__(self, router: RouterKind = "prototype_cosine",
                 init: Literal["warm", "fresh"] = "warm",
                 expert_dtype: Literal["float32", "float16"] = "float32",
                 gradient_free_memory: Literal["own_task", "cumulative"] = "own_task",
                 calibration: HoldoutCalibration | None = None, top_k: int = 1) -> None:
        super().__init__()
        self.calibration = calibration
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"routing top_k {top_k!r}: use an integer >= 1 (1: the nearest "
                             "task's expert only)")
        self.top_k = top_k
        if gradient_free_memory not in ("own_task", "cumulative"):
            raise ValueError(f"routing gradient_free_memory {gradient_free_memory!r}: use "
                             "own_task or cumulative")
        self.gradient_free_memory = gradient_free_memory
        if init not in ("warm", "fresh"):
            raise ValueError(f"routing init {init!r}: use 'warm' or 'fresh'")
        if expert_dtype not in ("float32", "float16"):
            raise ValueError(f"routing expert_dtype {expert_dtype!r}: use float32 or float16")
        self.router_kind = router
        self.init = init
        self.expert_dtype = expert_dtype
        self.router: TaskRouter | None = None
        self.experts: list[dict[str, Tensor]] = []
        self.initial: dict[str, Tensor] | None = None  # fresh: the untrained students
        self._scorer = None  # a copy of the detector (shared teacher) that experts load into
        self._loaded: int | None = None  # the expert now in the scorer
        # test column -> [good right, good, defect right, defect], and the task of each column
        self._counts: dict[int, list[int]] = {}
        self._task_of: dict[int, int] = {}
        self.diagnostics = RoutingDiagnostics()  # confusion, margins, metrics per routing outcome
        self._routed_batch = False  # the current evaluation batch went through the router

    # ---- training ---------------------------------------------------------------------------
    def starts_fresh(self, strategy) -> bool:
        """Whether each expert starts from the untrained (unfitted) detector: ``init: fresh``,
        or a gradient-free detector with ``gradient_free_memory: own_task`` (one memory per
        task; module docstring)."""
        return self.init == "fresh" or (
            self.gradient_free_memory == "own_task"
            and bool(getattr(strategy.detector, "learns_without_gradients", False)))

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.starts_fresh(strategy):
            if self.initial is None:
                self.initial = cpu_state_copy(strategy.model.state_dict(), None)
            else:
                strategy.model.load_state_dict(self.initial)
        if self.calibration is not None:  # cross-fit copies start where the expert starts
            self.calibration.remember_start(strategy)

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        """With calibration: hold the task's calibration images out of its training set."""
        if self.calibration is not None:
            self.calibration.split(strategy)

    def after_training_exp(self, strategy, **kwargs) -> None:
        """Keep the trained students as this task's expert and add the task's key (after the
        strategy's own calibration, which runs first); with calibration, measure the expert's
        map statistics on the held-out images."""
        if self.calibration is not None:
            self.calibration.measure(strategy)
        dtype = torch.float16 if self.expert_dtype == "float16" else None
        self.experts.append(cpu_state_copy(strategy.model.state_dict(), dtype))
        self._router(strategy).add_task(self._training_descriptors(strategy),
                                        _categories(strategy.experience))
        self._loaded = None

    def _router(self, strategy) -> TaskRouter:
        if self.router is None:
            self.router = TaskRouter(self.router_kind, strategy.detector.teacher.channels)
        return self.router

    @torch.no_grad()
    def _training_descriptors(self, strategy) -> Tensor:
        from torch.utils.data import DataLoader

        teacher = strategy.detector.teacher
        parts = []
        loader = DataLoader(strategy.experience.dataset, batch_size=strategy.eval_mb_size,
                            shuffle=False)
        with strategy._autocast():
            for batch in loader:
                parts.append(pooled_descriptor(teacher(batch[0].to(strategy.device))))
        return torch.cat(parts)

    # ---- evaluation ---------------------------------------------------------------------------
    def before_eval(self, strategy, **kwargs) -> None:
        self._counts, self._task_of = {}, {}
        self.diagnostics.reset()

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        """Hand the routed batch's scores, maps and masks to the diagnostics."""
        if not self._routed_batch:
            return
        self._routed_batch = False
        self.diagnostics.add_outputs(int(strategy.experience.current_experience),
                                     strategy.mb_image_score, strategy.mb_y,
                                     strategy.mb_anomaly_map, strategy.mb_mask)

    def confusion_matrix(self) -> Any:
        """``C[j, e]``: test images of test column j (a category) routed to expert e in the last
        evaluation (rows: every evaluated column; columns: the experts, one per task), or None
        before the first expert."""
        if not self.experts:
            return None
        return self.diagnostics.confusion(self.diagnostics.n_rows, len(self.experts))

    @torch.no_grad()
    def score_batch(self, strategy, images: Tensor) -> DetectorOutput:
        """Route each image to its expert and score it there (one teacher pass)."""
        detector = strategy.detector
        if not self.experts:  # the untrained row: no expert yet
            with strategy._autocast():
                return detector(images)
        own_cache = not isinstance(detector.teacher, CachedTeacher)
        if own_cache:  # one teacher pass per batch even when the run's cache is off
            attach_teacher_cache(detector, FeatureStore(max_mb=1e9, dtype=torch.float32))
        try:
            return self._score(strategy, images)
        finally:
            if own_cache:
                detach_teacher_cache(detector)

    def _score(self, strategy, images: Tensor) -> ScoredOutput:
        detector = strategy.detector
        with strategy._autocast():
            teacher = detector.teacher(images)
        router = self._router(strategy)
        # each task's nearest key (several keys per task: one per category); its argmin is
        # TaskRouter.route (keys are stored in task order, so ties go to the earlier task too)
        distances = router.task_distances(router.distances(pooled_descriptor(teacher)))
        candidates = self._candidates(distances).to(images.device)
        maps, raw, scores, parts = self._score_candidates(strategy, images, candidates)
        # top_k: the candidate that finds the image most normal (ties: the nearer key)
        choice = scores.argmin(dim=1)
        rows = torch.arange(images.shape[0], device=images.device)
        routed = candidates[rows, choice]
        self._count(strategy, routed)
        column = int(strategy.experience.current_experience)
        self.diagnostics.add_routing(column, self._true_task(strategy), routed, distances)
        self._routed_batch = True
        students: dict[str, list[Tensor]] = {}
        first = parts[0][2]
        for branch in first.students:
            levels = []
            for level, reference in enumerate(first.students[branch]):
                full = reference.new_empty((images.shape[0], *reference.shape[1:]))
                for index, slot, out in parts:
                    kept = choice[index] == slot
                    full[index[kept]] = out.students[branch][level][kept]
                levels.append(full)
            students[branch] = levels
        return ScoredOutput(teacher=list(teacher), students=students,
                            anomaly_map=maps[rows, choice],
                            uncalibrated_image_score=(
                                None if raw is None else detector.image_scores(raw[rows, choice])))

    def _candidates(self, distances: Tensor) -> Tensor:
        """``(B, k)`` the ``k = min(top_k, tasks)`` nearest tasks of each image, nearest first
        (``k = 1``: the argmin, as :meth:`TaskRouter.route`)."""
        k = min(self.top_k, distances.shape[1])
        if k == 1:
            return distances.argmin(dim=1, keepdim=True)
        return distances.topk(k, dim=1, largest=False, sorted=True).indices

    def _score_candidates(self, strategy, images: Tensor, candidates: Tensor
                          ) -> tuple[Tensor, Tensor | None, Tensor,
                                     list[tuple[Tensor, Tensor, DetectorOutput]]]:
        """Every image scored by each of its candidate experts: maps ``(B, k, 1, H, W)`` (on
        the common scale with ``calibration``), the raw maps (None without calibration), image
        scores ``(B, k)`` of the maps, and per expert (image rows, candidate slots, its output).
        Each expert scores all its images in one batch (k = 1: exactly the images routed to
        it)."""
        scorer = self._scorer_for(strategy)
        size = tuple(images.shape[-2:])
        k = candidates.shape[1]
        maps = torch.empty((images.shape[0], k, 1, *size), device=images.device)
        raw = None if self.calibration is None else torch.empty_like(maps)
        scores = torch.empty((images.shape[0], k), device=images.device)
        parts: list[tuple[Tensor, Tensor, DetectorOutput]] = []
        for expert in candidates.unique().tolist():
            index, slot = (candidates == expert).nonzero(as_tuple=True)
            if self._loaded != expert:
                scorer.load_state_dict(self.experts[expert])
                self._loaded = expert
            with strategy._autocast():
                out = scorer(images[index])
            expert_maps = scorer.anomaly_map_from_output(out, size).float()
            if raw is not None:
                raw[index, slot] = expert_maps
                expert_maps = self.calibration.stats[expert].apply(expert_maps)
            maps[index, slot] = expert_maps
            scores[index, slot] = strategy.detector.image_scores(expert_maps)
            parts.append((index, slot, out))
        return maps, raw, scores, parts

    def _scorer_for(self, strategy):
        if self._scorer is None or self._scorer[0] is not strategy.model:
            scorer = copy.deepcopy(strategy.model)  # shares the frozen (cached) teacher
            scorer.eval()
            self._scorer = (strategy.model, scorer)
            self._loaded = None
        return self._scorer[1]

    @staticmethod
    def _true_task(strategy) -> int:
        """The task holding the test column being evaluated (several categories per task:
        ``data.tasks``; one category per task: the column itself)."""
        column = int(strategy.experience.current_experience)
        return int(getattr(strategy.experience, "task_index", column))

    def _count(self, strategy, routed: Tensor) -> None:
        column = int(strategy.experience.current_experience)
        task = self._true_task(strategy)
        if task >= len(self.experts):  # no expert yet: its images cannot be routed right
            return
        self._task_of[column] = task
        labels = strategy.mb_y.to(routed.device)
        right = routed == task
        counts = self._counts.setdefault(column, [0, 0, 0, 0])
        for offset, mask in ((0, labels == 0), (2, labels != 0)):
            counts[offset] += int(right[mask].sum())
            counts[offset + 1] += int(mask.sum())

    # ---- records ----------------------------------------------------------------------------
    def memory_bytes(self) -> dict[int, int]:
        """Bytes held per task: its expert plus its key."""
        router = self.router
        return {t: _nbytes(e.values()) + (router.key_nbytes(t) if router else 0)
                for t, e in enumerate(self.experts)}

    def held_bytes(self) -> int:
        """Everything held: every expert and key, and the initial students when kept."""
        return (sum(self.memory_bytes().values())
                + (_nbytes(self.initial.values()) if self.initial else 0))

    def memory_stats(self) -> dict[str, Any]:
        """For the manifest's step entry: the total memory of all experts (MB, what the pooled
        ``memory_mb`` record holds), that total per task, and each task's own expert and key."""
        if not self.experts:
            return {}
        memory = self.memory_bytes()
        total = self.held_bytes() / _MB
        return {"routing_memory_mb_total": round(total, 4),
                "routing_memory_mb_per_task": round(total / len(self.experts), 4),
                "routing_expert_memory_mb": [round(memory[t] / _MB, 4) for t in sorted(memory)]}

    def eval_metrics(self) -> tuple[dict[int, dict[str, float]], dict[str, float]]:
        """(per task, pooled over the seen tasks) task-identification accuracy of the last
        evaluation (all, good, defective images) and memory held (MB). Per task: the expert and
        key of that task; pooled: everything held (with ``init: fresh`` the initial students
        too). Accuracies are left out where a task has no image of the kind."""
        def accuracies(c: list[int]) -> dict[str, float]:
            out = {}
            if c[1] + c[3]:
                out["task_id_acc"] = (c[0] + c[2]) / (c[1] + c[3])
            if c[1]:
                out["task_id_acc_good"] = c[0] / c[1]
            if c[3]:
                out["task_id_acc_defective"] = c[2] / c[3]
            return out

        memory = self.memory_bytes()
        diagnostics = self.diagnostics.task_metrics(len(self.experts))
        per_task = {j: {**accuracies(c),
                        "memory_mb": memory.get(self._task_of.get(j, j), 0) / _MB,
                        **diagnostics.get(j, {})}
                    for j, c in self._counts.items()}
        pooled: dict[str, float] = {}
        if self._counts:
            pooled.update(accuracies([sum(c[k] for c in self._counts.values())
                                      for k in range(4)]))
        if self.experts:
            pooled["memory_mb"] = self.held_bytes() / _MB
        return per_task, pooled

    # ---- resumable state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"router_kind": self.router_kind, "init": self.init,
                "expert_dtype": self.expert_dtype,
                "gradient_free_memory": self.gradient_free_memory,
                "experts": [dict(e) for e in self.experts],
                "router": self.router.state_dict() if self.router is not None else None,
                "initial": dict(self.initial) if self.initial is not None else None,
                "calibration": (self.calibration.state_dict() if self.calibration is not None
                                else None)}

    def load_state_dict(self, state: dict[str, Any], strategy=None) -> None:
        if "gradient_free_memory" not in state:  # a checkpoint from before the option
            gradient_free = bool(getattr(getattr(strategy, "detector", None),
                                         "learns_without_gradients", False))
            # its gradient-free experts kept cumulative memories; trained weights are unaffected
            state = {**state, "gradient_free_memory": "cumulative" if gradient_free
                     else self.gradient_free_memory}
        for key in ("router_kind", "init", "expert_dtype", "gradient_free_memory"):
            if state[key] != getattr(self, key):
                raise ValueError(f"saved routing state has {key}={state[key]!r}, this run "
                                 f"{getattr(self, key)!r}; resume with the configuration the "
                                 "run started with")
        self.experts = [{k: v.cpu() for k, v in e.items()} for e in state["experts"]]
        self.initial = ({k: v.cpu() for k, v in state["initial"].items()}
                        if state["initial"] is not None else None)
        saved = state.get("calibration")  # absent: a checkpoint from before the option
        if (saved is None) != (self.calibration is None):
            raise ValueError(f"saved routing state has calibration "
                             f"{saved['kind'] if saved else 'none'!r}, this run "
                             f"{self.calibration.kind if self.calibration else 'none'!r}; resume "
                             "with the configuration the run started with")
        if saved is not None:
            self.calibration.load_state_dict(saved)
        self.router = None
        if state["router"] is not None:
            self.router = TaskRouter(state["router"]["kind"], state["router"]["channels"])
            self.router.load_state_dict(state["router"])
        self._scorer = None
        self._loaded = None
