"""Tables as CSV, Markdown and LaTeX (booktabs): mean ± std per cell, best value in bold.

Written by hand rather than with ``DataFrame.to_latex``/``to_markdown``: those cannot bold one
cell per column by a rule nor merge mean and std into one cell without pre-formatted strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cl_bench.metrics.continual import RETENTION_MARGIN, chance_level
from cl_bench.records import POOLED
from cl_bench.report.labels import (
    CALIBRATION_QUANTITIES,
    HYBRID,
    LOWER_IS_BETTER,
    QUANTITIES,
    QUANTITY_LABELS,
    RETENTION_DETAILS,
    SIDE_QUANTITIES,
    config_label,
    config_sort_key,
    metric_label,
)
from cl_bench.report.matrices import DEFAULT_FPR_LIMIT, MatrixAggregate
from cl_bench.report.statistics import ALPHA, WILCOXON_TOO_FEW, wilcoxon_min_pairs
from cl_bench.report.strategy_kinds import is_reference, is_task_aware

DIGITS = 3
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": "$<$", ">": "$>$", "±": r"$\pm$",
                  "−": "$-$", "Δ": r"$\Delta$"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


@dataclass
class Table:
    """A grid of mean ± std cells with a rule for which cells are bold.

    ``mean``, ``std`` and ``count`` are (rows, columns) arrays; ``bold`` marks the best cells.
    ``keys`` holds extra identifying columns (one list per name) written first in the CSV.
    """

    name: str
    title: str
    caption: str
    row_header: str
    rows: list[str]
    columns: list[str]
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    bold: np.ndarray
    keys: dict[str, list] = field(default_factory=dict)
    digits: int = DIGITS
    column_ids: list[str] | None = None  # names of the columns in the CSV (default: columns)

    def cell(self, i: int, j: int) -> tuple[str, str]:
        """Markdown and LaTeX text of one cell."""
        mean, std = self.mean[i, j], self.std[i, j]
        if not np.isfinite(mean):
            return "–", "--"
        if np.isfinite(std):
            md = f"{mean:.{self.digits}f} ± {std:.{self.digits}f}"
            tex = f"{mean:.{self.digits}f} \\pm {std:.{self.digits}f}"
        else:
            md = f"{mean:.{self.digits}f}"
            tex = f"{mean:.{self.digits}f}"
        if self.bold[i, j]:
            return f"**{md}**", f"$\\mathbf{{{tex}}}$"
        return md, f"${tex}$"

    def to_frame(self) -> pd.DataFrame:
        """The CSV form: one row per table row; ``<column>_mean/_std/_count/_best`` per column."""
        data: dict[str, list] = {self.row_header: list(self.rows), **self.keys}
        for j, column in enumerate(self.column_ids or self.columns):
            data[f"{column}_mean"] = list(self.mean[:, j])
            data[f"{column}_std"] = list(self.std[:, j])
            data[f"{column}_count"] = [int(c) for c in self.count[:, j]]
            data[f"{column}_best"] = [bool(b) for b in self.bold[:, j]]
        return pd.DataFrame(data)

    def to_markdown(self) -> str:
        header = [self.row_header, *self.columns]
        body = [[self.rows[i], *(self.cell(i, j)[0] for j in range(len(self.columns)))]
                for i in range(len(self.rows))]
        return markdown_grid(header, body)

    def to_latex(self) -> str:
        header = [latex_escape(h) for h in (self.row_header, *self.columns)]
        body = [[latex_escape(self.rows[i]),
                 *(self.cell(i, j)[1] for j in range(len(self.columns)))]
                for i in range(len(self.rows))]
        return latex_grid(header, body, self.caption, self.name)

    def write(self, out_dir: Path) -> list[Path]:
        return write_all(out_dir, self.name, self.to_frame(), self.to_markdown(), self.to_latex())


@dataclass
class TextTable:
    """A table of ready-formatted cells (the paired comparison)."""

    name: str
    title: str
    caption: str
    frame: pd.DataFrame  # the CSV form, raw numbers
    header: list[str]
    header_latex: list[str]
    body_markdown: list[list[str]]
    body_latex: list[list[str]]

    def to_markdown(self) -> str:
        return markdown_grid(self.header, self.body_markdown)

    def to_latex(self) -> str:
        return latex_grid(self.header_latex, self.body_latex, self.caption, self.name)

    def write(self, out_dir: Path) -> list[Path]:
        return write_all(out_dir, self.name, self.frame, self.to_markdown(), self.to_latex())


def markdown_grid(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    align = ["---", *(["---:"] * (len(header) - 1))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def latex_grid(header: Sequence[str], body: Sequence[Sequence[str]], caption: str,
               name: str) -> str:
    spec = "l" + "c" * (len(header) - 1)
    lines = [
        "% requires \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{tab:{name}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(header) + " \\\\",
        "\\midrule",
        *(" & ".join(row) + " \\\\" for row in body),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_all(out_dir: Path, name: str, frame: pd.DataFrame, markdown: str,
              latex: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.csv", out_dir / f"{name}.md", out_dir / f"{name}.tex"]
    frame.to_csv(paths[0], index=False)
    paths[1].write_text(markdown, encoding="utf-8")
    paths[2].write_text(latex, encoding="utf-8")
    return paths


def best_cells(mean: np.ndarray, lower_is_better: Sequence[bool], eligible: np.ndarray,
               axis: int = 0, digits: int = DIGITS) -> np.ndarray:
    """Boolean mask of the best value per column (``axis=0``) or per row (``axis=1``).

    Values are compared as displayed (rounded to ``digits``), so ties are all bold; NaN never
    wins; only ``eligible`` cells compete. ``lower_is_better`` has one flag per column (axis 0)
    or per row (axis 1).
    """
    rounded = np.round(np.where(np.isfinite(mean), mean, np.nan), digits)
    bold = np.zeros(mean.shape, dtype=bool)
    lines = mean.shape[1] if axis == 0 else mean.shape[0]
    for k in range(lines):
        values = rounded[:, k] if axis == 0 else rounded[k, :]
        allowed = (eligible[:, k] if axis == 0 else eligible[k, :]) & np.isfinite(values)
        if not allowed.any():
            continue
        candidates = np.where(allowed, values, np.nan)
        best = np.nanmin(candidates) if lower_is_better[k] else np.nanmax(candidates)
        winners = allowed & (values == best)
        if axis == 0:
            bold[:, k] = winners
        else:
            bold[k, :] = winners
    return bold


def _is_reference(strategy: str, task_aware: bool) -> bool:
    return is_reference(strategy, task_aware)


def _fill_cells(lookup: pd.DataFrame, keys: list[list[tuple]], shape: tuple[int, int],
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean, std and count arrays of ``shape`` from ``keys`` (rows x columns of index keys into
    ``lookup``, an aggregate indexed by those keys); NaN / 0 where a key is absent."""
    mean, std = np.full(shape, np.nan), np.full(shape, np.nan)
    count = np.zeros(shape, dtype=int)
    for i, row_keys in enumerate(keys):
        for j, key in enumerate(row_keys):
            if key in lookup.index:
                row = lookup.loc[key]
                mean[i, j], std[i, j], count[i, j] = row["mean"], row["std"], row["count"]
    return mean, std, count


def _configs(frame: pd.DataFrame) -> list[tuple[str, str, bool]]:
    configs = {(str(m), str(s), bool(t)) for m, s, t in
               frame[["method", "strategy", "task_aware"]].itertuples(index=False)}
    return sorted(configs, key=config_sort_key)


def summary_table(agg: pd.DataFrame, metric: str, fpr_limit: float = DEFAULT_FPR_LIMIT,
                  quantities: Sequence[str] | None = None) -> Table:
    """Method x strategy rows; ACC, FM, BWT, FWT, retention, intransigence (with a joint run)
    and final pooled columns. ``fpr_limit``: eval.pro_fpr_limit of the runs (AU-PRO's label and
    chance level). ``quantities``: the columns (default: every quantity, retention's interval and
    excluded count beside it, then the side quantities)."""
    if quantities is None:
        at = QUANTITIES.index("retention") + 1
        quantities = (*QUANTITIES[:at], *RETENTION_DETAILS, *QUANTITIES[at:], *SIDE_QUANTITIES,
                      *CALIBRATION_QUANTITIES)
    frame = agg[agg["metric"] == metric]
    configs = _configs(frame)
    # a quantity no run defines (the pooled value of a pixel metric) gets no column
    defined = set(frame.loc[frame["count"] > 0, "quantity"])
    present = [q for q in quantities if q in defined]
    shape = (len(configs), len(present))
    mean, std, count = _fill_cells(
        frame.set_index(["method", "strategy", "task_aware", "quantity"]),
        [[(*config, quantity) for quantity in present] for config in configs], shape)
    eligible = np.array([[not _is_reference(s, t)] * len(present) for _, s, t in configs],
                        dtype=bool).reshape(shape)
    if not eligible.any():
        eligible[:] = True
    # details, not rankings
    eligible[:, [q in RETENTION_DETAILS or q in CALIBRATION_QUANTITIES for q in present]] = False
    bold = best_cells(mean, [LOWER_IS_BETTER.get(q, False) for q in present], eligible)
    label = metric_label(metric, fpr_limit)
    chance = chance_level(metric, fpr_limit)
    retention_note = (
        f"retention = sum_j w_j f_j / sum_j w_j over j<T-1, f_j = clip((R[T-1,j]-c) / "
        f"(R[j,j]-c), 0, 1), w_j = max(R[j,j]-c-{RETENTION_MARGIN:g}, 0), chance level "
        f"c = {chance:g}; in [0, 1]; 95% low/high = bootstrap over tasks; excluded = tasks "
        f"that gained at most {RETENTION_MARGIN:g} above c (weight 0)" if chance is not None else
        "retention is undefined for this metric (its chance level is the share of positives)")
    side_note = ("; task-ID acc = share of the seen tasks' test images routed to their own "
                 "task's expert after the final task (good/defective: those images only); "
                 "memory/task = MB of experts and keys held after the final task / T"
                 if any(q in SIDE_QUANTITIES for q in present) else "")
    gap_note = ("; gap = ACC - pooled (how much the scores of different tasks disagree in "
                "scale); uncalibrated: the same for the raw scores of a calibrated run"
                if any(q in CALIBRATION_QUANTITIES for q in present) else "")
    intransigence_note = (
        "intransigence = mean_k (R*_k - R[k,k]), R*_k = R[k,k] of the cumulative run (trained on "
        "tasks 0..k) of the same detector, seed and order (Chaudhry et al. 2018; lower is "
        "better); "
        if "intransigence" in present else "")
    return Table(
        name=f"summary_{metric}", title=f"Summary, {label}",
        caption=(f"{label}: continual metrics after the final task, mean ± std over seeds and "
                 "task orders. ACC = mean_j R[T-1,j]; FM = mean_{j<T-1} max_{j<=l<T-1} "
                 "(R[l,j] - R[T-1,j]) (lower is better); BWT = mean_{j<T-1} (R[T-1,j] - R[j,j]); "
                 f"FWT = mean_{{j>=1}} (R[j-1,j] - b_j); {retention_note}; "
                 f"{intransigence_note}pooled = task-agnostic metric over all test sets after the "
                 f"final task{side_note}{gap_note}. Bold: best continual method per column (joint "
                 "and the task-aware oracle are references and do not compete)."),
        row_header="method / strategy", rows=[config_label(*c) for c in configs],
        columns=[QUANTITY_LABELS.get(q, q) for q in present], column_ids=present, mean=mean,
        std=std, count=count, bold=bold,
        keys={"method": [c[0] for c in configs], "strategy": [c[1] for c in configs],
              "task_aware": [c[2] for c in configs]},
    )


def final_task_table(final_agg: pd.DataFrame, metric: str, task_order: Sequence[str],
                     fpr_limit: float = DEFAULT_FPR_LIMIT) -> Table:
    """Tasks x methods: the final value R[T-1, j] of each task; bold = best method per task."""
    frame = final_agg[final_agg["metric"] == metric]
    configs = _configs(frame)
    tasks = [t for t in task_order if t in set(frame["task"])]
    shape = (len(tasks), len(configs))
    mean, std, count = _fill_cells(
        frame.set_index(["task", "method", "strategy", "task_aware"]),
        [[(task, *config) for config in configs] for task in tasks], shape)
    eligible = np.array([[not _is_reference(s, t) for _, s, t in configs]] * len(tasks),
                        dtype=bool).reshape(shape)
    if not eligible.any():
        eligible[:] = True
    bold = best_cells(mean, [False] * len(tasks), eligible, axis=1)
    label = metric_label(metric, fpr_limit)
    return Table(
        name=f"final_per_task_{metric}", title=f"Final per-task {label}",
        caption=(f"{label} of each task after the final task (R[T-1, j]), mean ± std over seeds "
                 "and task orders. Bold: best continual method per task (row)."),
        row_header="task", rows=tasks, columns=[config_label(*c) for c in configs],
        mean=mean, std=std, count=count, bold=bold,
    )


def matrix_table(agg: MatrixAggregate, name: str) -> Table:
    """Rows: untrained, then after each task; columns: tasks. Bold: each task's peak."""
    n = len(agg.tasks)
    mean = np.vstack([agg.baseline_mean[None, :], agg.mean])
    std = np.vstack([np.full((1, n), np.nan), agg.std])
    count = np.vstack([np.zeros((1, n), dtype=int), agg.count])
    eligible = np.ones_like(mean, dtype=bool)
    eligible[0] = False  # the untrained row is context, not a result
    bold = best_cells(mean, [False] * n, eligible & np.isfinite(mean))
    label = agg.metric_label
    return Table(
        name=name, title=f"R matrix, {label}, {agg.label}",
        caption=(f"{label} result matrix of {agg.label}: row i = after training task i, "
                 "column j = test set of task j; first row = untrained model (b_j, mean only). "
                 f"Mean ± std over {int(agg.count.max()) if agg.count.size else 0} run(s). "
                 "Bold: each task's highest value over the steps."),
        row_header="after training", rows=["(untrained)", *agg.tasks], columns=list(agg.tasks),
        mean=mean, std=std, count=count, bold=bold,
    )


def _p_text(p: float, markdown: bool, bold_below: float | None = None) -> str:
    """A p-value as text; bold where ``bold_below`` is given and p is below it."""
    if not np.isfinite(p):
        return "–" if markdown else "--"
    text = f"{p:.3f}" if p >= 0.001 else ("< 0.001" if markdown else "$<0.001$")
    if bold_below is not None and p < bold_below:
        return f"**{text}**" if markdown else f"\\textbf{{{text}}}"
    return text


def _wilcoxon_text(p: float, note: str, markdown: bool, bold_below: float | None = None) -> str:
    if note == WILCOXON_TOO_FEW:
        return note
    return _p_text(p, markdown, bold_below)


def comparison_table(paired: pd.DataFrame, reference: str = HYBRID,
                     fpr_limit: float = DEFAULT_FPR_LIMIT, excluded: Sequence[str] = (),
                     alpha: float = ALPHA) -> TextTable:
    """Paired comparison of ``reference`` against each baseline (rows of ``paired_comparison``).

    Raw and Holm-Bonferroni adjusted p-values side by side; bold only where the adjusted p is
    below ``alpha``. ``excluded``: run folders left out (not complete), named in the caption.
    """
    header = ["metric", "strategy", "baseline", "quantity", "n", f"{reference} mean",
              "baseline mean", f"Δ ({reference} − baseline)", "p (paired t)", "p Holm (paired t)",
              "p (Wilcoxon)", "p Holm (Wilcoxon)"]
    header_latex = [latex_escape(h) for h in header[:7]] + [
        f"$\\Delta$ ({latex_escape(reference)} $-$ baseline)", "$p$ (paired $t$)",
        "$p$ Holm (paired $t$)", "$p$ (Wilcoxon)", "$p$ Holm (Wilcoxon)"]
    body_md, body_tex = [], []
    for row in paired.itertuples(index=False):
        strategy = (f"{row.strategy} (task-aware oracle)"
                    if is_task_aware(row.strategy, getattr(row, "task_aware", False))
                    else row.strategy)
        common = [metric_label(row.metric, fpr_limit), strategy, row.baseline,
                  QUANTITY_LABELS.get(row.quantity, row.quantity), str(row.n),
                  f"{row.reference_mean:.{DIGITS}f}", f"{row.baseline_mean:.{DIGITS}f}",
                  f"{row.mean_diff:+.{DIGITS}f}"]
        note = getattr(row, "wilcoxon_note", "")
        for markdown, body in ((True, body_md), (False, body_tex)):
            cells = (common if markdown else
                     [*(latex_escape(c) for c in common[:5]), *(f"${c}$" for c in common[5:])])
            body.append([*cells, _p_text(row.t_pvalue, markdown),
                         _p_text(row.t_pvalue_holm, markdown, alpha),
                         _wilcoxon_text(row.wilcoxon_pvalue, note, markdown),
                         _wilcoxon_text(row.wilcoxon_pvalue_holm, note, markdown, alpha)])
    n_t = int(np.isfinite(paired["t_pvalue"].to_numpy(dtype=float)).sum())
    n_w = int(np.isfinite(paired["wilcoxon_pvalue"].to_numpy(dtype=float)).sum())
    left_out = (f" Runs not complete are left out: {', '.join(excluded)}." if excluded else "")
    return TextTable(
        name="comparison", title=f"Paired comparison: {reference} vs each baseline",
        caption=(f"{reference} against each baseline with the same strategy, paired by "
                 "(strategy, task order, seed) over complete runs (n pairs). Δ = mean of the "
                 f"paired differences; for FM and intransigence a negative Δ favours {reference}. "
                 "Two-sided paired t-test and Wilcoxon signed-rank test (scipy.stats), raw p and "
                 "Holm-Bonferroni adjusted p; the correction's family is every test of one kind "
                 f"in this table (all metrics, strategies, baselines and quantities: {n_t} "
                 f"t-tests, {n_w} Wilcoxon tests). Bold: adjusted p < {alpha:g}. Wilcoxon needs "
                 f"n >= {wilcoxon_min_pairs(alpha)} non-zero differences to reach p < {alpha:g} "
                 f"(its smallest two-sided p is 2/2^n); below that: \"{WILCOXON_TOO_FEW}\"."
                 + left_out),
        frame=paired, header=header, header_latex=header_latex, body_markdown=body_md,
        body_latex=body_tex,
    )


def routing_diagnostics_table(agg: pd.DataFrame, config: tuple[str, str, bool],
                              task_order: Sequence[str], labels: dict[str, str]) -> Table:
    """Tasks x routing diagnostics of one routing (method, strategy) after the final step
    (:func:`cl_bench.report.aggregate.routing_diagnostics`); no bold (no cell competes)."""
    frame = agg[(agg["method"] == config[0]) & (agg["strategy"] == config[1])
                & (agg["task_aware"] == config[2])]
    present = set(frame["task"])
    tasks = [t for t in [*task_order, POOLED] if t in present]
    metrics = [m for m in labels if m in set(frame["metric"])]
    shape = (len(tasks), len(metrics))
    mean, std, count = _fill_cells(frame.set_index(["task", "metric"]),
                                   [[(task, m) for m in metrics] for task in tasks], shape)
    label = config_label(*config)
    return Table(
        name=f"routing_diagnostics__{config[0]}__{config[1]}",
        title=f"Routing diagnostics, {label}",
        caption=("After the final task, per test task: share of its test images routed to its "
                 "own task's expert (pooled: over all tasks), image and pixel AUROC over its "
                 "correctly routed and its misrouted images apart (empty: no image in the group "
                 "or one class only), share of images within 5 % of their second-nearest key; "
                 "mean ± std over seeds and task orders."),
        row_header="task", rows=tasks, columns=[labels[m] for m in metrics],
        mean=mean, std=std, count=count, bold=np.zeros(shape, dtype=bool), column_ids=metrics,
    )
