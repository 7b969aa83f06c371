"""Resume from the last intact step: a missing or unreadable checkpoint is not a dead end.

:func:`fall_back_to_intact_steps` runs before a resumed run continues (docs/running.md,
"Resuming").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from cl_bench.run.context import RunContext

def _step_problem(ctx: RunContext, method: str, seed: int, step: int) -> str | None:
    """Why the state after ``step`` cannot be restored (``None``: it can)."""
    from strategies.errors import CheckpointError
    from strategies.training.checkpoint import read_checkpoint

    if ctx.cfg.strategy.spec().stream == "per_task":  # resumes from the tasks' saved test scores
        for task in range(step + 1):
            path = ctx.layout.scores(method, seed, task)
            try:
                with np.load(path) as data:
                    _ = data["scores"], data["labels"]  # read: finds a cut file
            except FileNotFoundError:
                return f"{path} is missing"
            except (OSError, ValueError, KeyError, EOFError) as exc:
                return f"{path} cannot be read ({type(exc).__name__})"
        return None
    path = ctx.checkpoint_path(method, seed, step)
    if not path.is_file():
        return f"checkpoint {path} is missing"
    try:
        read_checkpoint(path)
    except CheckpointError:
        return f"checkpoint {path} is truncated or unreadable"
    return None


def fall_back_to_intact_steps(ctx: RunContext) -> None:
    """Resume each unfinished cell from its last step whose saved state is intact.

    When the state after a cell's last completed step is missing or unreadable, the cell goes
    back to the latest earlier step that is intact (or to the untrained model, whose state is
    rebuilt from the seed); the records of the later steps are dropped by
    :func:`_drop_incomplete_rows` and those steps trained again, which reproduces them exactly
    (every step re-seeds from (seed, step)). Said on the console and in the manifest.
    """
    cells = ctx.manifest.cells
    T = len(ctx.groups)
    candidates = [T - 1] if ctx.cfg.strategy.spec().stream == "joint" else list(range(T))
    changed = False
    for key, cell in cells.items():
        last = cell.get("completed_step", -2)
        if cell.get("status") == "complete" or last < 0:
            continue
        method, _, seed_text = key.rpartition("/seed")
        seed = int(seed_text)
        problems, intact, by_design = [], -1, False
        for step in sorted((s for s in candidates if s <= last), reverse=True):
            if (problems and ctx.cfg.strategy.spec().stream != "per_task"
                    and ctx.cfg.performance.keep_checkpoints == "last"):
                by_design = True  # the earlier checkpoints were deleted after each step
                break
            problem = _step_problem(ctx, method, seed, step)
            if problem is None:
                intact = step
                break
            problems.append(problem)
        if not problems:
            continue
        after = "the untrained model" if intact < 0 else f"step {intact}"
        earlier = ("; the earlier checkpoints were deleted by design after each step "
                   "(performance.keep_checkpoints: last)" if by_design else
                   f" (and {len(problems) - 1} earlier step(s))" if len(problems) > 1 else "")
        message = (f"resume {method} seed {seed}: {problems[0]}{earlier}"
                   f"; continuing from {after}: the records of steps {intact + 1}..{last} "
                   "are dropped and those steps trained again")
        ctx.log(f"warning: {message}")
        ctx.manifest.warn(message)
        cell["completed_step"] = intact
        ctx.manifest.drop_steps_after(method, seed, intact)
        changed = True
    if changed:
        ctx.manifest.save()
