"""Figures for papers: forgetting curves, average curves, R heatmaps, bars, anomaly-map grids.

Each function returns a :class:`matplotlib.figure.Figure` built without pyplot (so no global
backend or figure registry is touched; saving renders through the Agg canvas). Methods keep one
colour from the Okabe-Ito palette (Okabe & Ito 2008, colour-blind safe) in every figure;
strategies are told apart by line style (curves) or hatching (bars).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cl_bench.report.labels import (
    config_label,
    config_sort_key,
    current_recorded_detectors,
    metric_label,
)
from cl_bench.report.load import MapSet
from cl_bench.report.matrices import MatrixAggregate
from strategies.palette import OKABE_ITO as OKABE_ITO  # the figures' palette, re-exported
from strategies.palette import assign_colors

_LINESTYLES = ["-", "--", ":", "-."]
_HATCHES = ["", "//", "..", "xx", "\\\\", "oo"]
FIGURE_FORMATS = ("png", "pdf")
FIGURE_DPI = 150


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One colour per method, the detector registry's (each detector's declared colour, a spare
    Okabe-Ito one otherwise: :func:`strategies.detectors.detector_colors`), or the colours the
    runs recorded while the report uses them (:class:`cl_bench.report.labels.RecordedDetectors`).
    """
    recorded = current_recorded_detectors()
    if recorded is not None:
        colors = assign_colors(dict(recorded.colors), list(methods))
    else:
        from strategies.detectors import detector_colors

        colors = detector_colors(methods)
    return {m: colors[m] for m in methods}


def _styles(strategies: Sequence[str], styles: Sequence[str]) -> dict[str, str]:
    ordered = sorted(set(strategies), key=lambda s: config_sort_key(("", s)))
    return {s: styles[k % len(styles)] for k, s in enumerate(ordered)}


def save_figure(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.png`` (150 dpi) and ``name.pdf``; return their paths.

    The constrained layout (which fits the labels) is computed once, at the PNG's resolution,
    and then frozen with ``set_layout_engine(None)``: ``savefig`` would otherwise lay the figure
    out again and draw it once more before every file, two layouts and four draws per figure
    instead of one and three, most of the report's time. The PNG is byte-identical to one saved
    with the engine on; the PDF keeps the same figure-relative positions.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # the PNG then reuses the renderer (and its text metrics) of the layout
    fig.set_dpi(FIGURE_DPI)
    fig.draw_without_rendering()
    fig.set_layout_engine(None)
    paths = []
    for fmt in FIGURE_FORMATS:
        path = out_dir / f"{name}.{fmt}"
        fig.savefig(path, dpi=FIGURE_DPI)
        paths.append(path)
    return paths


def _grid(n_panels: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, max(1, n_panels))
    return (n_panels + cols - 1) // cols, cols


def _step_ticks(ax, tasks: Sequence[str]) -> None:
    ax.set_xticks(range(-1, len(tasks)))
    ax.set_xticklabels(["untrained", *tasks], rotation=45, ha="right", fontsize=7)


def plot_forgetting_curves(aggs: Sequence[MatrixAggregate], colors: dict[str, str]) -> Figure:
    """One panel per method/strategy; one line per task j: R[i, j] over steps i (with b_j).

    ``aggs`` share one metric and one task sequence. The line is the mean over seeds, the band
    mean ± std. A filled marker shows the step where the task is trained.
    """
    aggs = sorted(aggs, key=lambda a: config_sort_key((a.method, a.strategy)))
    tasks = aggs[0].tasks
    rows, cols = _grid(len(aggs))
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    task_colors = colormaps["viridis"](np.linspace(0.0, 0.9, len(tasks)))
    steps = np.arange(-1, len(tasks))
    for ax, agg in zip(axes.flat, aggs, strict=False):
        for j, task in enumerate(tasks):
            mean = np.concatenate([[agg.baseline_mean[j]], agg.mean[:, j]])
            std = np.concatenate([[agg.baseline_std[j]], agg.std[:, j]])
            # NaN breaks the line: steps a strategy does not evaluate (joint) stay gaps
            ax.plot(steps, mean, color=task_colors[j], lw=1.4, marker=".", ms=4, label=task)
            band = np.isfinite(mean) & np.isfinite(std)
            if band.any():
                ax.fill_between(steps[band], (mean - std)[band], (mean + std)[band],
                                color=task_colors[j], alpha=0.15, lw=0)
            if np.isfinite(agg.mean[j, j]):
                ax.scatter([j], [agg.mean[j, j]], color=task_colors[j], s=14, zorder=3)
        ax.set_title(agg.label, color=colors.get(agg.method, "black"), fontsize=9)
        _step_ticks(ax, tasks)
        ax.set_xlabel("after training task")
        ax.set_ylabel(aggs[0].metric_label)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(aggs):]:
        fig.delaxes(ax)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", title="test task", fontsize=7)
    fig.suptitle(f"Forgetting curves: {aggs[0].metric_label} of each task over the "
                 "training steps (mean ± std over seeds; dot = task just trained)", fontsize=10)
    return fig


def plot_average_curves(curves: pd.DataFrame, metric: str, colors: dict[str, str],
                        label: str | None = None) -> Figure:
    """Average over seen tasks ACC_i = mean_{j<=i} R[i, j] (and the pooled metric) per step.

    ``curves`` is the aggregated step table (method, strategy, task_aware, metric, step,
    quantity in {seen_average, pooled}, mean, std, count). One line per method/strategy.
    """
    label = label or metric_label(metric)
    frame = curves[curves["metric"] == metric]
    panels = [q for q in ("seen_average", "pooled")
              if frame.loc[frame["quantity"] == q, "mean"].notna().any()] or ["seen_average"]
    titles = {"seen_average": "average over the tasks seen so far",
              "pooled": "pooled over the test sets seen so far (task-agnostic)"}
    fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    configs, linestyles = _configs_and_linestyles(frame)
    for ax, quantity in zip(axes, panels, strict=True):
        _mean_std_lines(ax, frame[frame["quantity"] == quantity], configs, colors, linestyles,
                        skip_missing=True)
        ax.set_title(titles[quantity], fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("number of tasks trained")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{label} over the training steps (mean ± std over seeds and "
                 "orders)", fontsize=10)
    return fig


def _configs_and_linestyles(frame: pd.DataFrame) -> tuple[list[tuple], dict[str, str]]:
    """The (method, strategy, task_aware) lines of ``frame`` in report order, and a line style
    per strategy."""
    configs = sorted({(m, s, bool(t)) for m, s, t in
                      frame[["method", "strategy", "task_aware"]].itertuples(index=False)},
                     key=config_sort_key)
    return configs, _styles([c[1] for c in configs], _LINESTYLES)


def _mean_std_lines(ax, part: pd.DataFrame, configs, colors: dict[str, str],
                    linestyles: dict[str, str], skip_missing: bool) -> None:
    """One line per (method, strategy, task_aware) of ``part`` (columns step, mean, std) with a
    +- std band; ``skip_missing`` joins the line over steps without a mean."""
    for method, strategy, task_aware in configs:
        line = part[(part["method"] == method) & (part["strategy"] == strategy)
                    & (part["task_aware"] == task_aware)].sort_values("step")
        if skip_missing:
            line = line[line["mean"].notna()]
        x = line["step"].to_numpy() + 1
        mean, std = line["mean"].to_numpy(float), line["std"].to_numpy(float)
        ax.plot(x, mean, color=colors.get(method, "black"), ls=linestyles[strategy],
                marker="o", ms=3, label=config_label(method, strategy, task_aware))
        band = np.isfinite(std)
        if band.any():
            ax.fill_between(x[band], (mean - std)[band], (mean + std)[band],
                            color=colors.get(method, "black"), alpha=0.15, lw=0)


def plot_task_id_accuracy(curves: pd.DataFrame, colors: dict[str, str]) -> Figure:
    """Task-identification accuracy per step: panels all / good / defective images, one line
    per method/strategy. ``curves``: :func:`cl_bench.report.statistics.task_id_curves`."""
    kinds = [k for k in ("task_id_acc", "task_id_acc_good", "task_id_acc_defective")
             if (curves["metric"] == k).any()]
    titles = {"task_id_acc": "all test images", "task_id_acc_good": "defect-free images",
              "task_id_acc_defective": "defective images"}
    fig = Figure(figsize=(4.2 * len(kinds), 3.6), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    configs, linestyles = _configs_and_linestyles(curves)
    for ax, kind in zip(axes, kinds, strict=True):
        _mean_std_lines(ax, curves[curves["metric"] == kind], configs, colors, linestyles,
                        skip_missing=False)
        ax.set_title(titles[kind], fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("number of tasks trained")
        ax.set_ylabel("task-ID accuracy (seen tasks)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Task-identification accuracy over the training steps (mean ± std)",
                 fontsize=10)
    return fig


def plot_routing_confusions(panels: Sequence[tuple[str, pd.DataFrame]]) -> Figure:
    """Routing confusion matrices (rows: true task, columns: the expert the router chose), one
    panel per ``(title, matrix)``; colour = share of the row's test images, count written in."""
    rows, cols = _grid(len(panels))
    n = max(len(m) for _, m in panels)
    size = max(3.2, 0.42 * n + 1.5)
    fig = Figure(figsize=(size * cols + 0.8, size * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    fontsize = max(4.0, min(8.0, 60.0 / n))
    image = None
    for ax, (title, matrix) in zip(axes.flat, panels, strict=False):
        counts = matrix.to_numpy(dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        image = ax.imshow(share, vmin=0.0, vmax=1.0, cmap="cividis", aspect="equal")
        for (i, j), value in np.ndenumerate(counts):
            if value:
                ax.text(j, i, f"{int(value)}", ha="center", va="center", fontsize=fontsize,
                        color="black" if share[i, j] > 0.5 else "white")
        ax.set_xticks(range(counts.shape[1]), list(matrix.columns), rotation=90,
                      fontsize=fontsize)
        ax.set_yticks(range(counts.shape[0]), list(matrix.index), fontsize=fontsize)
        ax.set_xlabel("routed to expert of")
        ax.set_ylabel("true task")
        ax.set_title(title, fontsize=9)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="share of the true task's test images")
    return fig


def plot_heatmaps(aggs: Sequence[MatrixAggregate], colors: dict[str, str]) -> Figure:
    """R-matrix heatmaps (mean over seeds, values written in), one panel per method/strategy.

    The figure has one extra axes: the shared colour bar.
    """
    aggs = sorted(aggs, key=lambda a: config_sort_key((a.method, a.strategy)))
    tasks = aggs[0].tasks
    n = len(tasks)
    rows, cols = _grid(len(aggs))
    size = max(3.2, 0.42 * n + 1.5)
    fig = Figure(figsize=(size * cols + 0.8, size * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    fontsize = max(4.0, min(8.0, 60.0 / n))
    for ax, agg in zip(axes.flat, aggs, strict=False):
        image = ax.imshow(agg.mean, vmin=0.0, vmax=1.0, cmap="cividis", aspect="equal")
        for i in range(n):
            for j in range(n):
                value = agg.mean[i, j]
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                            color="black" if value > 0.45 else "white")
        ax.set_xticks(range(n))
        ax.set_xticklabels(tasks, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n))
        ax.set_yticklabels(tasks, fontsize=7)
        ax.set_xlabel("test task j")
        ax.set_ylabel("after training task i")
        ax.set_title(agg.label, color=colors.get(agg.method, "black"), fontsize=9)
    for ax in list(axes.flat)[len(aggs):]:
        fig.delaxes(ax)
    fig.colorbar(image, ax=list(axes.flat)[: len(aggs)],
                 label=aggs[0].metric_label, shrink=0.8)
    fig.suptitle(f"R matrix, {aggs[0].metric_label} (mean over seeds; blank = not "
                 "evaluated)", fontsize=10)
    return fig


def plot_final_bars(final_agg: pd.DataFrame, metric: str, task_order: Sequence[str],
                    colors: dict[str, str], label: str | None = None) -> Figure:
    """Grouped bars: the final value R[T-1, j] per task, one bar per method/strategy (± std)."""
    label = label or metric_label(metric)
    frame = final_agg[final_agg["metric"] == metric]
    tasks = [t for t in task_order if t in set(frame["task"])]
    configs = sorted({(m, s, bool(t)) for m, s, t in
                      frame[["method", "strategy", "task_aware"]].itertuples(index=False)},
                     key=config_sort_key)
    hatches = _styles([c[1] for c in configs], _HATCHES)
    width = 0.8 / max(1, len(configs))
    fig = Figure(figsize=(max(6.0, 0.5 * len(tasks) * max(2, len(configs)) ** 0.5 + 3), 3.8),
                 layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(tasks))
    for k, (method, strategy, task_aware) in enumerate(configs):
        part = frame[(frame["method"] == method) & (frame["strategy"] == strategy)
                     & (frame["task_aware"] == task_aware)].set_index("task")
        part = part.reindex(tasks)
        ax.bar(x - 0.4 + (k + 0.5) * width, part["mean"].to_numpy(), width,
               yerr=np.nan_to_num(part["std"].to_numpy()), capsize=2,
               color=colors.get(method, "black"), hatch=hatches[strategy], edgecolor="white",
               label=config_label(method, strategy, task_aware))
    ax.set_xticks(x)
    ax.set_xticklabels(tasks, rotation=45, ha="right")
    ax.set_xlabel("task")
    ax.set_ylabel(f"final {label}")
    ax.set_ylim(0.0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper")
    ax.set_title(f"{label} of each task after the final task (mean ± std over "
                 "seeds)", fontsize=10)
    return fig


def select_examples(map_set: MapSet, per_task: int = 2) -> list[int]:
    """Indices of up to ``per_task`` images per task, defective ones first, in task order."""
    chosen = []
    for task in dict.fromkeys(map_set.tasks.tolist()):
        idx = np.flatnonzero(map_set.tasks == task)
        defective = [i for i in idx if map_set.labels[i]]
        good = [i for i in idx if not map_set.labels[i]]
        chosen += (defective + good)[:per_task]
    return chosen


def plot_map_grid(map_sets: Sequence[MapSet], colors: dict[str, str],
                  per_task: int | None = None) -> Figure:
    """Rows: test images; columns: image, ground truth, then each method's map (final task).

    The first map set chooses the images (defective first, ``per_task`` per task); the others are
    matched by task and rank within the task, so every method shows the same image. Each method's
    maps are scaled to [0, 1] by that method's min and max over the shown images. ``per_task``
    defaults to 2 for up to 5 tasks, else 1 (the grid stays printable for 15 tasks).
    """
    map_sets = sorted(map_sets, key=lambda m: config_sort_key((m.method, m.strategy)))
    first = map_sets[0]
    if per_task is None:
        per_task = 2 if len(set(first.tasks.tolist())) <= 5 else 1
    chosen = select_examples(first, per_task)
    rank_of = {i: int(np.sum(first.tasks[:i] == first.tasks[i])) for i in chosen}
    cols = 2 + len(map_sets)
    fig = Figure(figsize=(1.7 * cols, 1.7 * len(chosen) + 0.6), layout="constrained")
    axes = fig.subplots(len(chosen), cols, squeeze=False)
    scaled = []
    for ms in map_sets:
        rows = [_matching_index(ms, first.tasks[i], rank_of[i]) for i in chosen]
        maps = np.stack([ms.maps[r] if r is not None else np.full(first.maps[0].shape, np.nan)
                         for r in rows]).astype(float)
        low, high = np.nanmin(maps), np.nanmax(maps)
        scaled.append((maps - low) / (high - low) if high > low else np.zeros_like(maps))
    for r, index in enumerate(chosen):
        image = np.transpose(first.images[index], (1, 2, 0))
        axes[r, 0].imshow(image)
        axes[r, 1].imshow(first.masks[index], cmap="gray", vmin=0,
                          vmax=max(1, float(np.max(first.masks))))
        axes[r, 0].set_ylabel(f"{first.tasks[index]}\n"
                              f"{'defective' if first.labels[index] else 'good'}", fontsize=7)
        for c in range(len(map_sets)):
            axes[r, 2 + c].imshow(scaled[c][r], cmap="inferno", vmin=0, vmax=1)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    titles = ["image", "ground truth", *(config_label(m.method, m.strategy) for m in map_sets)]
    for c, title in enumerate(titles):
        color = colors.get(map_sets[c - 2].method, "black") if c >= 2 else "black"
        axes[0, c].set_title(title, fontsize=7, color=color)
    fig.suptitle("Anomaly maps after the final task (each method scaled to [0, 1] over the "
                 "shown images)", fontsize=9)
    return fig


def _matching_index(map_set: MapSet, task: str, rank: int) -> int | None:
    idx = np.flatnonzero(map_set.tasks == task)
    return int(idx[rank]) if rank < len(idx) else None
