"""Which task router to ship: task-identification accuracy of each router kind, measured.

``python -m cl_bench.benchmarks.routing [--data synthetic|PATH] [--size 128]``

For every category of the data set (alphabetical), the frozen teacher's pooled descriptors of
its **training** images build that task's key
(:class:`strategies.continual.routing.router.TaskRouter`); after each step t (tasks 0..t seen) every
test image of a seen task is routed and counted as right when it lands on its own task. Test labels
serve only to split the count into good and defective images. Printed per kind: accuracy over all
steps' seen-task images (good, defective), the accuracy after the last step, and the worst step. No
training: the router needs the teacher only.

``--crossfit K`` measures without any test image, for choosing a router on a data set whose test
images must stay unseen: each task's training images are split into K folds; the images of
fold f are routed by keys built from the other K - 1 folds of every seen task, and each image is
routed once per step (normal images only, so there is no defective column).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from strategies.continual.routing.router import ROUTER_KINDS, TaskRouter, pooled_descriptor
from strategies.teachers.backbones import build_teacher


def _descriptors(teacher, dataset, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    from torch.utils.data import DataLoader

    parts, labels = [], []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            parts.append(pooled_descriptor(teacher(batch[0])))
            labels.append(batch[1])
    return torch.cat(parts), torch.cat(labels)


def _tasks_and_teacher(root, image_size: int, backbone: str, weights: str):
    """The data set's tasks, the frozen teacher, and each task's training descriptors."""
    from cl_bench.data import build_benchmark

    tasks = build_benchmark(root, image_size=image_size)
    teacher = build_teacher(backbone, weights)
    return tasks, teacher, [_descriptors(teacher, d)[0] for d in tasks.train_datasets]


def measure(root, image_size: int, backbone: str = "efficientnet_lite0",
            weights: str = "imagenet") -> dict[str, dict[str, float]]:
    """Per router kind: accuracies (all steps pooled, last step, worst step), good/defective."""
    tasks, teacher, train = _tasks_and_teacher(root, image_size, backbone, weights)
    test = [_descriptors(teacher, d) for d in tasks.test_datasets]
    results = {}
    for kind in ROUTER_KINDS:
        router = TaskRouter(kind, teacher.channels)
        right = {"good": 0, "defective": 0}
        total = {"good": 0, "defective": 0}
        per_step = []
        ratios: list[torch.Tensor] = []
        for step, z in enumerate(train):
            router.add_task(z)
            step_right = step_total = 0
            last = {"good": [0, 0], "defective": [0, 0]}
            for j in range(step + 1):
                z_test, y = test[j]
                dist = router.distances(z_test)
                hit = dist.argmin(dim=1) == j
                if step == len(train) - 1:
                    others = torch.cat([dist[:, :j], dist[:, j + 1:]], dim=1)
                    if others.shape[1]:
                        ratios.append(others.min(dim=1).values / dist[:, j].clamp_min(1e-12))
                for name, mask in (("good", y == 0), ("defective", y == 1)):
                    right[name] += int(hit[mask].sum())
                    total[name] += int(mask.sum())
                    last[name][0] += int(hit[mask].sum())
                    last[name][1] += int(mask.sum())
                step_right += int(hit.sum())
                step_total += len(hit)
            per_step.append(step_right / step_total)
        results[kind] = {
            "all_steps_good": right["good"] / total["good"],
            "all_steps_defective": right["defective"] / total["defective"],
            "last_step_good": last["good"][0] / last["good"][1],
            "last_step_defective": last["defective"][0] / last["defective"][1],
            "worst_step": min(per_step),
            # after the last step: nearest other task's distance / own task's distance, the
            # smallest over the test images (> 1: every image routed right, with that margin)
            "min_margin_ratio": float(torch.cat(ratios).min()) if ratios else float("nan"),
        }
    return results


def crossfit_folds(n_images: int, folds: int) -> list[torch.Tensor]:
    """Image indices 0..n-1 dealt round-robin into ``folds`` folds (deterministic, no
    shuffling: the image order of a folder is fixed)."""
    if not 2 <= folds <= n_images:
        raise ValueError(f"--crossfit {folds}: need 2 <= K <= the smallest training set "
                         f"({n_images} images)")
    index = torch.arange(n_images)
    return [index[index % folds == f] for f in range(folds)]


def measure_crossfit(train: list[torch.Tensor], channels, folds: int = 5
                     ) -> dict[str, dict[str, float]]:
    """Per router kind: task-ID accuracy of held-out **training** descriptors (``train[t]``:
    task t's pooled descriptors), over all steps, after the last step and at the worst step."""
    split = [crossfit_folds(len(z), folds) for z in train]
    results = {}
    for kind in ROUTER_KINDS:
        # per step, right and total over all folds; fold f's router grows one key per step
        right, total = [0] * len(train), [0] * len(train)
        for f in range(folds):
            router = TaskRouter(kind, channels)
            for step, z in enumerate(train):
                keep = torch.cat([split[step][g] for g in range(folds) if g != f])
                router.add_task(z[keep])
                for t in range(step + 1):
                    hit = router.distances(train[t][split[t][f]]).argmin(dim=1) == t
                    right[step] += int(hit.sum())
                    total[step] += len(hit)
        per_step = [r / n for r, n in zip(right, total, strict=True)]
        results[kind] = {"all_steps_good": sum(right) / sum(total),
                         "last_step_good": per_step[-1], "worst_step": min(per_step)}
    return results


def _print_crossfit(results: dict[str, dict[str, float]]) -> None:
    print("| router | all steps (held-out training images) | last step | worst step |")
    print("| --- | ---: | ---: | ---: |")
    for kind, r in results.items():
        print(f"| {kind} | {r['all_steps_good']:.3f} | {r['last_step_good']:.3f} | "
              f"{r['worst_step']:.3f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="synthetic",
                        help="'synthetic' (the default generated set) or a dataset folder")
    parser.add_argument("--size", type=int, default=128, help="image size (pixels)")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--categories", type=int, default=5, help="synthetic categories (<= 12)")
    parser.add_argument("--crossfit", type=int, default=0, metavar="K",
                        help="route held-out training images (K folds) instead of test images")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.data == "synthetic":
        from cl_bench.data import ensure_synthetic

        root = ensure_synthetic(n_categories=args.categories, n_train=20, n_test=20,
                                size=args.size, seed=0)
    else:
        root = Path(args.data)
    if args.crossfit:
        _, teacher, train = _tasks_and_teacher(root, args.size, args.backbone, "imagenet")
        print(f"data {args.data}, {args.size} px, teacher {args.backbone}, "
              f"{args.crossfit}-fold cross-fit on training images (no test image read)")
        _print_crossfit(measure_crossfit(train, teacher.channels, args.crossfit))
        return
    results = measure(root, args.size, args.backbone)
    print(f"data {args.data}, {args.size} px, teacher {args.backbone}")
    print("| router | all steps good | all steps defective | last step good | "
          "last step defective | worst step | min margin ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, r in results.items():
        print(f"| {kind} | {r['all_steps_good']:.3f} | {r['all_steps_defective']:.3f} | "
              f"{r['last_step_good']:.3f} | {r['last_step_defective']:.3f} | "
              f"{r['worst_step']:.3f} | {r['min_margin_ratio']:.2f} |")


if __name__ == "__main__":
    main()
