"""Projected wall time of a whole continual run from measured throughput.

For a naive run over the 15 MVTec AD categories (3629 training and 1725 test images in all;
Bergmann et al., CVPR 2019) with ``E`` epochs per task:

    train_s = E * N_train / r_train
    eval_s  = (T + 1) * N_test / r_infer

where ``r_train`` and ``r_infer`` are images/s of a training step and of inference, and
``T + 1`` counts the evaluation of every task's test set before training (the untrained row of
the accuracy matrix) and after each of the ``T`` tasks. With the teacher cache, only an image's
first pass runs the teacher; with ``r'`` the throughputs of a step whose teacher features all
come from the cache:

    train_s = N_train * (1 / r_train + (E - 1) / r'_train)
    eval_s  = N_test  * (1 / r_infer + T / r'_infer)

Data loading, checkpoints and metric computation are not in these figures, so they are lower
bounds; replay adds its buffer to every epoch.
"""

from __future__ import annotations

MVTEC_AD_TRAIN_IMAGES = 3629
MVTEC_AD_TEST_IMAGES = 1725
MVTEC_AD_TASKS = 15


def project_run(train_images_per_s: float, infer_images_per_s: float, epochs: int,
                train_images: int = MVTEC_AD_TRAIN_IMAGES,
                test_images: int = MVTEC_AD_TEST_IMAGES,
                tasks: int = MVTEC_AD_TASKS,
                cached_train_images_per_s: float | None = None,
                cached_infer_images_per_s: float | None = None) -> dict[str, float]:
    """``{"train_s", "eval_s", "total_s"}`` of one seed of one method (formulas above); the
    cached throughputs, when given, make it the projection of a run with the teacher cache."""
    cached_train = (train_images_per_s if cached_train_images_per_s is None
                    else cached_train_images_per_s)
    cached_infer = (infer_images_per_s if cached_infer_images_per_s is None
                    else cached_infer_images_per_s)
    if min(train_images_per_s, infer_images_per_s, cached_train, cached_infer) <= 0:
        raise ValueError(f"throughputs must be positive, got train {train_images_per_s}, "
                         f"inference {infer_images_per_s}, cached train {cached_train} and "
                         f"cached inference {cached_infer} images/s")
    if epochs < 1 or tasks < 1 or train_images < 1 or test_images < 1:
        raise ValueError(f"epochs, tasks and image counts must be >= 1, got epochs={epochs}, "
                         f"tasks={tasks}, train_images={train_images}, "
                         f"test_images={test_images}")
    train_s = train_images * (1 / train_images_per_s + (epochs - 1) / cached_train)
    eval_s = test_images * (1 / infer_images_per_s + tasks / cached_infer)
    return {"train_s": train_s, "eval_s": eval_s, "total_s": train_s + eval_s}


def format_duration(seconds: float) -> str:
    """``3h 25m``, ``12m 5s`` or ``41s``."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
