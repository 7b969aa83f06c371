"""``cl-bench bench detectors``: training and inference throughput, trainable parameters and
peak memory of each detector, for one backbone, image size and batch size, on CPU or CUDA.

Each detector is measured in its own subprocess so that memory figures do not mix:
on CPU the peak is the process's maximum resident set size (``resource.getrusage``) and its
rise over the baseline taken after the model was built (``tracemalloc`` does not see torch's
allocator); on CUDA it is ``torch.cuda.max_memory_allocated`` over the timed steps.
A training step is forward + loss + backward + Adam step on random images (its FLOPs, counted
by ``torch.utils.flop_counter``, give a load-independent cost); inference is
``anomaly_map`` + ``image_scores``. Step times are medians over ``--steps`` timed steps (robust to
other processes on a shared machine). The last line gives the hybrid's training-step time over
RD4AD's (the issue's budget: at most 1.6).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

from cl_bench.errors import ConfigError, RunError


def first_paragraph(text: str | None) -> str:
    """The first paragraph of a docstring as one line (``--help``'s description): the whole
    sentence, not its first line."""
    return " ".join((text or "").strip().split("\n\n")[0].split())


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("detectors", help="throughput and memory of each detector",
                              description=first_paragraph(__doc__))
    p.add_argument("--detectors", default="stpm,rd4ad,hybrid", help="comma-separated")
    p.add_argument("--backbone", default="efficientnet_lite0")
    p.add_argument("--weights", default="none",
                   help="teacher weights ('none' is fine for timing; 'imagenet' or a file)")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="detector option applied where the detector has it; repeatable")
    p.add_argument("--json", action="store_true", help="print one JSON object per detector")
    p.add_argument("--cache", action="store_true",
                   help="also measure each detector with a full teacher cache (every image "
                        "seen before: the teacher does not run), in its own process")
    p.add_argument("--project-epochs", type=int, default=None, metavar="E",
                   help="also print the projected time of a naive 15-task MVTec AD run with E "
                        "epochs per task (experiments/mvtec_ad.yaml has 50); with --cache "
                        "also with the teacher cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cl_bench.cli_options import parse_options
    from strategies.detectors import DETECTOR_OPTIONS

    names = [n.strip() for n in args.detectors.split(",") if n.strip()]
    for name in names:
        if name not in DETECTOR_OPTIONS:
            raise ConfigError(f"--detectors: unknown detector {name!r}; choose from "
                              f"{', '.join(sorted(DETECTOR_OPTIONS))}")
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.image_size < 32:
        raise ConfigError("--steps >= 1, --warmup >= 0, --batch-size >= 1, --image-size >= 32")
    options = parse_options(args.option)
    results = []
    if not args.json:
        print(f"# backbone={args.backbone} weights={args.weights} image_size={args.image_size} "
              f"batch_size={args.batch_size} device={args.device} steps={args.steps} "
              f"threads={args.threads or 'default'} options={options}")
        print(f"{'detector':<12} {'train_img/s':>11} {'infer_img/s':>11} {'train_step_ms':>13} "
              f"{'train_GFLOP/img':>15} "
              f"{'trainable_params':>16} {'peak_mem_MB':>11} {'mem_rise_MB':>11}")
    for name in names:
        job = {
            "detector": name, "backbone": args.backbone, "weights": args.weights,
            "image_size": args.image_size, "batch_size": args.batch_size,
            "device": args.device, "steps": args.steps, "warmup": args.warmup,
            "threads": args.threads,
            "options": {k: v for k, v in options.items() if k in DETECTOR_OPTIONS[name]},
        }
        for cached in (False, True) if args.cache else (False,):
            result = _run_worker({**job, "cache": cached})
            results.append(result)
            if args.json:
                print(json.dumps(result))
            else:
                print_row(result)
            sys.stdout.flush()
    if args.project_epochs is not None:
        print_projection(results, args.project_epochs, args.json)
    by_name = {r["detector"]: r for r in results if not r["cache"]}
    if "hybrid" in by_name and "rd4ad" in by_name:
        separate = by_name["hybrid"]["train_step_ms"] / by_name["rd4ad"]["train_step_ms"]
        flop_ratio = (by_name["hybrid"]["train_gflop_per_image"]
                      / by_name["rd4ad"]["train_gflop_per_image"])
        pair_job = {**job, "detector": "pair", "options": {
            name: {k: v for k, v in options.items() if k in DETECTOR_OPTIONS[name]}
            for name in ("rd4ad", "hybrid")}}
        paired = _run_worker(pair_job)
        if args.json:
            print(json.dumps({"hybrid_over_rd4ad_train_step": paired["ratio"],
                              "hybrid_over_rd4ad_separate_runs": separate,
                              "hybrid_over_rd4ad_train_flop": flop_ratio}))
        else:
            print(f"hybrid / rd4ad training-step time: {paired['ratio']:.2f} (budget 1.60; "
                  f"median of {paired['pairs']} interleaved rounds; from the rows above "
                  f"{separate:.2f}); training FLOP ratio {flop_ratio:.2f}")
    return 0


def print_row(result: dict) -> None:
    label = result["detector"] + ("+cache" if result["cache"] else "")
    print(f"{label:<12} {result['train_images_per_s']:>11.1f} "
          f"{result['infer_images_per_s']:>11.1f} {result['train_step_ms']:>13.1f} "
          f"{result['train_gflop_per_image']:>15.2f} "
          f"{result['trainable_parameters']:>16,d} {result['peak_memory_mb']:>11.1f} "
          f"{result['memory_rise_mb']:>11.1f}")


def print_projection(results: list[dict], epochs: int, as_json: bool) -> None:
    """Projected naive 15-task MVTec AD run per detector (:mod:`cl_bench.benchmarks.projection`),
    without and, where measured, with the teacher cache."""
    from cl_bench.benchmarks.projection import (
        MVTEC_AD_TEST_IMAGES,
        MVTEC_AD_TRAIN_IMAGES,
        format_duration,
        project_run,
    )

    if epochs < 1:
        raise ConfigError(f"--project-epochs must be >= 1, got {epochs}")
    if not as_json:
        print(f"projected 15-task MVTec AD run, one seed, naive, {epochs} epochs/task "
              f"({MVTEC_AD_TRAIN_IMAGES} train images x {epochs} epochs, "
              f"{MVTEC_AD_TEST_IMAGES} test images x 16 evaluations), data loading excluded, "
              f"at this image and batch size:")
    cached = {r["detector"]: r for r in results if r["cache"]}
    for result in (r for r in results if not r["cache"]):
        name = result["detector"]
        variants = [("off", project_run(result["train_images_per_s"],
                                        result["infer_images_per_s"], epochs))]
        if name in cached:
            variants.append(("on", project_run(
                result["train_images_per_s"], result["infer_images_per_s"], epochs,
                cached_train_images_per_s=cached[name]["train_images_per_s"],
                cached_infer_images_per_s=cached[name]["infer_images_per_s"])))
        for cache, projected in variants:
            if as_json:
                print(json.dumps({"detector": name, "teacher_cache": cache == "on",
                                  "projected_epochs": epochs,
                                  **{f"projected_{k}": v for k, v in projected.items()}}))
            else:
                print(f"  {name:<8} cache {cache:<3} train "
                      f"{format_duration(projected['train_s']):>8}  eval "
                      f"{format_duration(projected['eval_s']):>8}  total "
                      f"{format_duration(projected['total_s']):>8}")


def _run_worker(job: dict) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "cl_bench.benchmarks.detectors", json.dumps(job)],
        capture_output=True, text=True, check=False,
    )
    lines = [ln for ln in completed.stdout.splitlines() if ln.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise RunError(f"benchmark of {job['detector']!r} failed: " + " | ".join(tail))
    return json.loads(lines[-1])


def _rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def fill_teacher_cache(detector, images) -> None:
    """Attach a float32 teacher cache and pass ``images`` once: the cache's steady state, in
    which every later step on these images finds all teacher features stored."""
    import torch

    from strategies.teachers.teacher_cache import FeatureStore, attach_teacher_cache

    attach_teacher_cache(detector, FeatureStore(max_mb=4096, dtype=torch.float32))
    detector.eval()
    with torch.no_grad():
        detector.anomaly_map(images)


def measure(job: dict) -> dict:
    """Run in the worker process: build, time training and inference, read peak memory."""
    import torch

    from strategies.detectors import build_detector
    from strategies.training.optimizers import build_optimizer

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    device = torch.device(job["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError("--device cuda: CUDA is not available here; use --device cpu")
    torch.manual_seed(0)
    detector = build_detector(job["detector"], job["backbone"], job["weights"],
                              **job["options"]).to(device)
    b, s = job["batch_size"], job["image_size"]
    images = torch.randn(b, 3, s, s, device=device)
    optimizer = build_optimizer(detector.trainable_parameters(), "adam", lr=1e-4)
    if job.get("cache"):
        fill_teacher_cache(detector, images)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step() -> None:
        detector.train()
        result = detector.loss(images)
        optimizer.zero_grad(set_to_none=True)
        result.total.backward()
        optimizer.step()

    def infer_step() -> None:
        detector.eval()
        with torch.no_grad():
            detector.image_scores(detector.anomaly_map(images))

    from torch.utils.flop_counter import FlopCounterMode

    baseline_rss = _rss_mb()
    with FlopCounterMode(display=False) as counter:  # load-independent cost of one step
        train_step()
    train_flops = counter.get_total_flops()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline_cuda = torch.cuda.memory_allocated(device) / 2**20
    timings = {}
    for label, step in (("train", train_step), ("infer", infer_step)):
        for _ in range(job["warmup"]):
            step()
        sync()
        durations = []
        for _ in range(job["steps"]):
            start = time.perf_counter()
            step()
            sync()
            durations.append(time.perf_counter() - start)
        timings[label] = statistics.median(durations)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        rise = peak - baseline_cuda
    else:
        peak = _rss_mb()
        rise = peak - baseline_rss
    return {
        "detector": job["detector"],
        "cache": bool(job.get("cache")),
        "train_images_per_s": b / timings["train"],
        "infer_images_per_s": b / timings["infer"],
        "train_step_ms": 1000 * timings["train"],
        "infer_step_ms": 1000 * timings["infer"],
        "train_gflop_per_image": train_flops / b / 1e9,
        "trainable_parameters": detector.num_trainable_parameters(),
        "peak_memory_mb": peak,
        "memory_rise_mb": rise,
        "memory_kind": "cuda_max_allocated" if device.type == "cuda" else "max_rss",
    }


def measure_pair(job: dict) -> dict:
    """Hybrid/RD4AD training-step time ratio from interleaved rounds on one teacher and batch.

    Each round times, for each detector, one untimed step then the faster of two steps, the
    order of the two detectors swapped every round; both see the same load, and the median over
    rounds is robust on a busy machine."""
    import torch

    from strategies.detectors import build_detector
    from strategies.training.optimizers import build_optimizer

    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    device = torch.device(job["device"])
    torch.manual_seed(0)
    rd4ad = build_detector("rd4ad", job["backbone"], job["weights"], **job["options"]["rd4ad"])
    hybrid = build_detector("hybrid", job["backbone"], job["weights"],
                            **job["options"]["hybrid"])
    hybrid.set_teacher(rd4ad.teacher)  # the same teacher for both
    rd4ad.to(device)
    hybrid.to(device)
    b, s = job["batch_size"], job["image_size"]
    images = torch.randn(b, 3, s, s, device=device)
    optimizers = {d: build_optimizer(d.trainable_parameters(), "adam", lr=1e-4)
                  for d in (rd4ad, hybrid)}

    def timed_step(detector) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        detector.train()
        result = detector.loss(images)
        optimizers[detector].zero_grad(set_to_none=True)
        result.total.backward()
        optimizers[detector].step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    def block(detector) -> float:
        timed_step(detector)  # untimed: the allocator adapts to the other model's sizes
        return min(timed_step(detector), timed_step(detector))

    for _ in range(job["warmup"]):
        timed_step(rd4ad)
        timed_step(hybrid)
    ratios = []
    for index in range(job["steps"]):
        # alternate which detector goes first: the place in a round moves the time
        # (docs/performance.md)
        order = (hybrid, rd4ad) if index % 2 == 0 else (rd4ad, hybrid)
        seconds = {detector: block(detector) for detector in order}
        ratios.append(seconds[hybrid] / seconds[rd4ad])
    return {"detector": "pair", "ratio": statistics.median(ratios), "pairs": len(ratios)}


if __name__ == "__main__":  # the per-detector worker
    job = json.loads(sys.argv[1])
    print(json.dumps(measure_pair(job) if job["detector"] == "pair" else measure(job)))
