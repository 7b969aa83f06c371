"""``cl-bench bench metrics``: the pixel metrics of one task, reference vs one-ranking fast path.

One synthetic task (``--maps`` maps of ``--size``^2 pixels, half of them defective with 1-4
blob-shaped regions; smooth float32 maps brighter on the defects) is scored twice in one run:

- reference: scikit-learn ``roc_auc_score`` + ``average_precision_score`` on the flattened
  pixels, plus the exact AU-PRO of :func:`cl_bench.metrics.anomaly.au_pro` (argsort, official
  MVTec AD approach), each computed separately;
- fast: :func:`cl_bench.metrics.ranking.pixel_metrics`, all three from one ranking, on
  ``--device`` (maps already on that device, as in the streaming evaluator).

Prints both timings (median of ``--repeat``), the ratio, the differences between the two and
the peak memory (tracemalloc for numpy allocations; ``torch.cuda.max_memory_allocated`` on
CUDA; the process's peak RSS at the end).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cl_bench.errors import ConfigError

if TYPE_CHECKING:  # numpy, scipy and torch load when the benchmark runs, not for --help
    import numpy as np

MB = 1024 * 1024


def synthetic_task(n_maps: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 maps (N,S,S) and uint8 masks (N,S,S): every second image has 1-4 defect blobs."""
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    masks = np.zeros((n_maps, size, size), dtype=np.uint8)
    yy, xx = np.ogrid[:size, :size]
    for i in range(1, n_maps, 2):
        for _ in range(int(rng.integers(1, 5))):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = rng.uniform(0.02, 0.1, 2) * size + 1
            masks[i][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    noise = rng.standard_normal((n_maps, size, size), dtype=np.float32)
    maps = ndimage.gaussian_filter(noise, sigma=(0, 2, 2)) * 4
    maps += ndimage.gaussian_filter(masks.astype(np.float32), sigma=(0, 3, 3)) * 2
    return maps.astype(np.float32), masks


def _timed(fn: Callable[[], object], sync: Callable[[], None]) -> tuple[float, object]:
    sync()
    start = time.perf_counter()
    value = fn()
    sync()
    return time.perf_counter() - start, value


def _streaming(maps: Any, masks: Any, fpr_limit: float, sync: Callable[[], None]) -> None:
    """The streaming evaluator as a run uses it: batches of 16 maps, then compute()."""
    from cl_bench.metrics.accumulator import TaskEvaluator

    evaluator = TaskEvaluator(fpr_limit=fpr_limit)

    def feed_and_compute() -> dict[str, float]:
        for lo in range(0, len(maps), 16):
            evaluator.update(maps[lo:lo + 16, None], masks[lo:lo + 16, None])
        return evaluator.compute()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seconds, _ = _timed(feed_and_compute, sync)
    print(f"streaming TaskEvaluator (batches of 16, image + pixel metrics): {seconds:.3f} s, "
          f"state {evaluator.state_nbytes / MB:.0f} MB for {evaluator.n_pixels / 1e6:.2f}M "
          "pixels (float32 map + bool mask = 5 bytes/pixel)")


def run(args: argparse.Namespace) -> int:
    import torch

    from cl_bench.metrics.ranking import pixel_metrics

    if args.maps < 2 or args.size < 8 or args.repeat < 1:
        raise ConfigError("--maps must be >= 2, --size >= 8 and --repeat >= 1 "
                          f"(got {args.maps}, {args.size}, {args.repeat})")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {args.device}: CUDA is not available on this machine; "
                          "use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    maps, masks = synthetic_task(args.maps, args.size, args.seed)
    n_pixels = maps.size
    print(f"task: {args.maps} maps of {args.size}x{args.size} = {n_pixels / 1e6:.2f}M pixels, "
          f"{int(masks.sum())} defect pixels, fpr_limit {args.fpr_limit}, "
          f"torch threads {torch.get_num_threads()}")

    # reference: three separate computations, each sorting the pixels itself
    tracemalloc.start()
    ref_times: dict[str, list[float]] = {"pixel_auroc": [], "pixel_ap": [], "au_pro": []}
    from cl_bench.metrics.anomaly import au_pro, pixel_ap, pixel_auroc

    ref_fns = {"pixel_auroc": lambda: pixel_auroc(maps, masks),
               "pixel_ap": lambda: pixel_ap(maps, masks),
               "au_pro": lambda: au_pro(maps, masks, args.fpr_limit)}
    ref: dict[str, float] = {}
    for _ in range(args.repeat):
        for key, fn in ref_fns.items():
            seconds, ref[key] = _timed(fn, lambda: None)
            ref_times[key].append(seconds)
    ref_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ref_total = [sum(ts) for ts in zip(*ref_times.values(), strict=True)]

    # fast: one ranking, maps already on the device
    if device.type == "cuda":
        dev_maps, dev_masks = torch.from_numpy(maps).to(device), torch.from_numpy(masks).to(device)
    else:
        dev_maps, dev_masks = maps, masks
    first, _ = _timed(lambda: pixel_metrics(dev_maps, dev_masks, fpr_limit=args.fpr_limit,
                                            device=device), sync)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base_gpu = torch.cuda.memory_allocated(device)
    tracemalloc.start()
    fast_times, fast = [], {}
    for _ in range(args.repeat):
        seconds, fast = _timed(lambda: pixel_metrics(dev_maps, dev_masks,
                                                     fpr_limit=args.fpr_limit, device=device),
                               sync)
        fast_times.append(seconds)
    fast_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    ref_s, fast_s = statistics.median(ref_total), statistics.median(fast_times)
    print("reference (scikit-learn AUROC + AP, exact AU-PRO; median of "
          f"{args.repeat}): {ref_s:.3f} s  [" + ", ".join(
              f"{k} {statistics.median(v):.3f} s" for k, v in ref_times.items()) + "]")
    print(f"fast, one ranking on {device} (median of {args.repeat}): {fast_s:.3f} s  "
          f"[first call {first:.3f} s]")
    print(f"speed-up: {ref_s / fast_s:.1f}x")
    for key in ref:
        diff = abs(fast[key] - ref[key])
        print(f"  {key:12s} reference {ref[key]:.15f}  fast {fast[key]:.15f}  "
              f"|diff| {diff:.1e}  rel {diff / abs(ref[key]):.1e}")
    print(f"peak memory (tracemalloc, numpy): reference {ref_peak / MB:.0f} MB, "
          f"fast {fast_peak / MB:.0f} MB (input maps+masks: {(maps.nbytes + masks.nbytes) / MB:.0f}"
          " MB, not counted)")
    if device.type == "cuda":
        peak_gpu = torch.cuda.max_memory_allocated(device) - base_gpu
        print(f"peak GPU memory of the fast path (torch.cuda.max_memory_allocated, above the "
              f"maps): {peak_gpu / MB:.0f} MB")
    _streaming(dev_maps, dev_masks, args.fpr_limit, sync)
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metrics", help="pixel AUROC/AP/AU-PRO: scikit-learn + exact AU-PRO vs one ranking",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=150, help="maps in the task (default 150)")
    parser.add_argument("--size", type=int, default=256, help="map side in pixels (default 256)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] for the fast path")
    parser.add_argument("--repeat", type=int, default=1, help="timed repetitions (median)")
    parser.add_argument("--fpr-limit", type=float, default=0.3, help="AU-PRO FPR limit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic task")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice)")
    parser.set_defaults(func=run)
