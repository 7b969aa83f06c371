"""Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), online mode (Schwarz et al.,
"Progress & Compress", ICML 2018), as Avalanche's ``EWCPlugin``.

While training every task after the first the loss gains
``ewc_lambda * sum_k F_k (theta_k - theta*_k)^2``, with ``theta*`` the weights after the previous
task and ``F_k`` the diagonal Fisher information (mean squared gradient of the task loss over
that task's training data), accumulated in online mode: ``F <- decay_factor * F + F_t``.
It works for distillation detectors because the teacher is hidden from ``parameters()`` and
the criterion keeps Avalanche's ``criterion(output, y)`` contract (the loss ignores ``y``).

:class:`ResumableEWCPlugin` adds ``state_dict`` / ``load_state_dict`` (the saved parameters and
importances, as ``weights_only``-loadable tensors) so that an interrupted run resumes with the
same penalty.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from avalanche.training.plugins import EWCPlugin

from strategies.continual.plugin_state import decode_state, encode_state


class ResumableEWCPlugin(EWCPlugin):
    """Avalanche's ``EWCPlugin`` whose importances and saved parameters can be saved and loaded."""

    def state_dict(self) -> dict[str, Any]:
        return {"saved_params": encode_state(dict(self.saved_params)),
                "importances": encode_state(dict(self.importances))}

    def load_state_dict(self, state: dict[str, Any], strategy) -> None:
        device = torch.device(strategy.device)
        self.saved_params = defaultdict(dict, decode_state(state["saved_params"], device))
        self.importances = defaultdict(dict, decode_state(state["importances"], device))
