"""Task router: which task's expert should score an image, without a task label.

A *key* per task is computed from the frozen teacher's features of that task's **training**
images only (defect-free; no test image and no label is ever used). An image's descriptor is the
global average of each teacher level, ``z_l = mean_{h,w} f_l(x)`` (``C_l`` values per level,
:func:`pooled_descriptor`); defects are local, so they move this global descriptor little
(the reason for pooling: a defective image must still look like its category).

Two kinds of key (``kind``):

- ``prototype_cosine`` / ``prototype_euclidean``: the per-level mean descriptor
  ``mu_{t,l}`` of task t (nearest class mean, Mensink et al., TPAMI 2013). Distance
  ``d_t(x) = sum_l (1 - cos(z_l, mu_{t,l}))`` or ``d_t(x) = sum_l ||z_l - mu_{t,l}||^2 / C_l``
  (each level weighs equally, whatever its channel count).
- ``mahalanobis``: a Gaussian per task over the concatenated descriptor ``z`` (``D = sum C_l``)
  with the Ledoit-Wolf shrinkage covariance ``Sigma_t = (1 - a) S_t + a (tr S_t / D) I``
  (Ledoit & Wolf, J. Multivariate Anal. 2004; ``sklearn.covariance.LedoitWolf``), needed since a
  task may have fewer training images than dimensions. Distance: the squared Mahalanobis
  distance ``d_t(x) = (z - mu_t)^T Sigma_t^{-1} (z - mu_t)`` (as PaDiM scores patches,
  Defard et al., ICPR 2021, here on the whole image).

The image goes to ``argmin_t d_t(x)``; ties go to the earlier task. A task of several categories
(``data.tasks``) keeps one key per category (``add_task(descriptors, groups)``): the image goes
to the task of the nearest key, ``argmin_t min_{c in t} d_c(x)``, so a unified task's key stays
as sharp as a one-category task's (one mean over very different categories would sit between
them). Pure torch at test time; the
covariance estimate runs once per task in scikit-learn (float64), and only ``mu_t`` and
``Sigma_t^{-1}`` are kept (float32).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from strategies.errors import StrategiesError

RouterKind = Literal["prototype_cosine", "prototype_euclidean", "mahalanobis"]
ROUTER_KINDS: tuple[str, ...] = ("prototype_cosine", "prototype_euclidean", "mahalanobis")


class RouterError(StrategiesError, ValueError):
    """A bad router setting, or features that do not match the router's keys."""


def pooled_descriptor(levels: Sequence[Tensor]) -> Tensor:
    """``(B, sum C_l)``: each teacher level (B, C_l, H_l, W_l) averaged over its locations,
    concatenated in level order, float32."""
    return torch.cat([level.float().mean(dim=(2, 3)) for level in levels], dim=1)


class TaskRouter:
    """Keys of the tasks seen so far and the nearest-key rule (module docstring).

    ``add_task(descriptors)`` appends the key of the next task from its training images'
    descriptors ``(N, D)``; ``route(descriptors)`` returns the task index of each row;
    ``distances`` the ``(B, tasks)`` matrix it minimises. ``channels`` (the teacher's ``C_l``)
    splits a descriptor into its levels for the prototype kinds.
    """

    def __init__(self, kind: RouterKind, channels: Sequence[int]) -> None:
        if kind not in ROUTER_KINDS:
            raise RouterError(f"unknown router kind {kind!r}; use one of {', '.join(ROUTER_KINDS)}")
        self.kind = kind
        self.channels = tuple(int(c) for c in channels)
        self.means: list[Tensor] = []
        self.precisions: list[Tensor] = []  # mahalanobis only
        self.shrinkages: list[float] = []  # mahalanobis only: Ledoit-Wolf's a
        self.key_task: list[int] = []  # the task of each key (several keys: several categories)
        self.n_tasks = 0

    @property
    def dim(self) -> int:
        return sum(self.channels)

    def __len__(self) -> int:
        return self.n_tasks

    def _check(self, descriptors: Tensor, what: str) -> Tensor:
        if descriptors.ndim != 2 or descriptors.shape[1] != self.dim:
            raise RouterError(f"{what}: descriptors of shape {tuple(descriptors.shape)} do not "
                              f"match the teacher's levels {self.channels} (expected (N, "
                              f"{self.dim})); use pooled_descriptor on the same teacher's output")
        return descriptors.detach().float().cpu()

    # ---- keys -----------------------------------------------------------------------------
    def add_task(self, descriptors: Tensor, groups: Sequence[str] | None = None) -> int:
        """Append the key(s) of a new task from its training images' descriptors; its index.

        ``groups`` (one label per image, e.g. its category): one key per distinct label, in
        order of first appearance; None: one key for the whole task."""
        z = self._check(descriptors, "add_task")
        if z.shape[0] < 1:
            raise RouterError("add_task: a task needs at least one training image for its key")
        labels = list(groups) if groups is not None else [None] * z.shape[0]
        if len(labels) != z.shape[0]:
            raise RouterError(f"add_task: {len(labels)} group labels for {z.shape[0]} images")
        task = self.n_tasks
        for label in dict.fromkeys(labels):
            rows = torch.tensor([i for i, g in enumerate(labels) if g == label])
            self._add_key(z[rows])
            self.key_task.append(task)
        self.n_tasks += 1
        return task

    def _add_key(self, z: Tensor) -> None:
        self.means.append(z.mean(dim=0))
        if self.kind == "mahalanobis":
            if z.shape[0] < 2:
                raise RouterError("add_task: the mahalanobis router needs at least two training "
                                  "images per task (a covariance); use a prototype router")
            from sklearn.covariance import LedoitWolf

            estimate = LedoitWolf(assume_centered=False).fit(z.double().numpy())
            self.precisions.append(torch.from_numpy(estimate.precision_).float())
            self.shrinkages.append(float(estimate.shrinkage_))

    def key_nbytes(self, task: int) -> int:
        """Bytes held for one task's key(s)."""
        keys = [k for k, t in enumerate(self.key_task) if t == task]
        tensors = [self.means[k] for k in keys] + [self.precisions[k] for k in keys
                                                   if self.precisions]
        return sum(t.numel() * t.element_size() for t in tensors)

    # ---- routing --------------------------------------------------------------------------
    def distances(self, descriptors: Tensor) -> Tensor:
        """``(B, keys)`` distance of every descriptor to every key (smaller: nearer); one key
        per task unless a task was added with several groups."""
        if not self.means:
            raise RouterError("the router has no task keys yet; add_task after the first task")
        z = self._check(descriptors, "distances")
        means = torch.stack(self.means)  # (T, D)
        if self.kind == "mahalanobis":
            diff = z[:, None, :] - means[None, :, :]  # (B, T, D)
            precision = torch.stack(self.precisions)  # (T, D, D)
            return torch.einsum("btd,tde,bte->bt", diff, precision, diff)
        total = torch.zeros(z.shape[0], means.shape[0])
        for z_l, mu_l in zip(z.split(self.channels, dim=1), means.split(self.channels, dim=1),
                             strict=True):
            if self.kind == "prototype_cosine":
                cos = torch.nn.functional.cosine_similarity(z_l[:, None, :], mu_l[None], dim=2)
                total += 1.0 - cos
            else:
                total += ((z_l[:, None, :] - mu_l[None]) ** 2).sum(dim=2) / z_l.shape[1]
        return total

    def task_distances(self, distances: Tensor) -> Tensor:
        """``(B, tasks)``: the distance to each task's nearest key, from :meth:`distances`'
        ``(B, keys)`` (one key per task: the same matrix)."""
        owner = torch.tensor(self.key_task, dtype=torch.int64, device=distances.device)
        if owner.numel() == self.n_tasks:  # one key per task, in task order
            return distances
        out = distances.new_full((distances.shape[0], self.n_tasks), float("inf"))
        return out.scatter_reduce(1, owner.expand_as(distances), distances, reduce="amin")

    def route(self, descriptors: Tensor) -> Tensor:
        """The task of the nearest key of each descriptor, ``(B,)`` int64 (ties: the earlier
        key)."""
        nearest = self.distances(descriptors).argmin(dim=1)
        return torch.tensor(self.key_task, dtype=torch.int64)[nearest]

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"kind": self.kind, "channels": list(self.channels),
                "means": [m.clone() for m in self.means],
                "precisions": [p.clone() for p in self.precisions],
                "shrinkages": list(self.shrinkages), "key_task": list(self.key_task)}

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind or tuple(state["channels"]) != self.channels:
            raise RouterError(f"saved router ({state['kind']}, levels {state['channels']}) does "
                              f"not match this one ({self.kind}, levels {list(self.channels)})")
        self.means = [m.float().cpu() for m in state["means"]]
        self.precisions = [p.float().cpu() for p in state["precisions"]]
        self.shrinkages = [float(a) for a in state["shrinkages"]]
        # a router saved before tasks had several keys: one key per task
        self.key_task = [int(t) for t in state.get("key_task", range(len(self.means)))]
        self.n_tasks = max(self.key_task, default=-1) + 1
