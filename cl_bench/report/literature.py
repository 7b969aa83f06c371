"""The report's section "As the literature reports it": one table per protocol.

Computed from the per-category records (before :mod:`cl_bench.report.task_level` folds them)
with :mod:`cl_bench.metrics.literature`:

- X-Y protocols (IUF, CDAD; ``data.tasks`` a named split or a list of lists): final image and
  pixel AUROC averaged over all categories, and A-AUROC (image, pixel);
- one category per task (UCAD, ReplayCAD): final image AUROC and pixel AP averaged over the
  categories, and ReplayCAD's FM (the joint run of the same method and seed minus this run)
  where the report holds that joint run. UCAD's FM (a memory-size gap) is not computable from a
  continual run and is not shown.

Values are percentages (x100), as the papers print them: mean ± std over seeds (n). Published
numbers (``docs/literature/published.csv``, :func:`published_rows`) whose protocol and metric
definition match a table are listed under it as context, marked "published, not reproduced",
never ranked and never bold. A row's ``metric`` is a key of :data:`PUBLISHED_METRICS`, which
states the definition; only the keys of :data:`PUBLISHED_METRIC` are matched to a column, the
others (a paper's own definition, e.g. UCAD's memory-gap FM) are kept in the CSV and never shown
next to a different quantity.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from cl_bench.data.splits import DATASET_CATEGORIES, DATASET_NAMES, NAMED_SPLITS
from cl_bench.errors import DataError
from cl_bench.metrics.literature import a_auroc, final_mean, fm_versus_joint
from cl_bench.report.load import RunInfo
from cl_bench.report.task_level import run_tasks

#: the versioned table of published numbers
PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "literature" / "published.csv"
ONE_CATEGORY = "one_category"
CUSTOM = "custom_tasks"
#: (column label, metric of records, quantity) per protocol family
XY_COLUMNS = [("image AUROC, final", "image_auroc", "final"),
              ("pixel AUROC, final", "pixel_auroc", "final"),
              ("image A-AUROC", "image_auroc", "a_auroc"),
              ("pixel A-AUROC", "pixel_auroc", "a_auroc")]
ONE_COLUMNS = [("image AUROC, final", "image_auroc", "final"),
               ("pixel AP, final", "pixel_ap", "final"),
               ("image FM (ReplayCAD)", "image_auroc", "fm_joint"),
               ("pixel AP FM (ReplayCAD)", "pixel_ap", "fm_joint")]
#: the published metric name of each (records metric, quantity): the keys a row can match
PUBLISHED_METRIC = {("image_auroc", "final"): "image_auroc_final",
                    ("pixel_auroc", "final"): "pixel_auroc_final",
                    ("pixel_ap", "final"): "pixel_ap_final",
                    ("image_auroc", "a_auroc"): "image_a_auroc",
                    ("pixel_auroc", "a_auroc"): "pixel_a_auroc",
                    ("image_auroc", "fm_joint"): "image_fm_vs_joint",
                    ("pixel_ap", "fm_joint"): "pixel_ap_fm_vs_joint"}
#: every metric key the published CSV may use, with its definition (R: the per-category matrix
#: of docs/metrics.md, T steps, C categories); keys outside PUBLISHED_METRIC are never matched
PUBLISHED_METRICS = {
    "image_auroc_final": "image AUROC after the last step, mean over all C categories: "
                         "(1/C) sum_c R[T-1, c]",
    "pixel_auroc_final": "pixel AUROC after the last step, mean over all C categories",
    "pixel_ap_final": "pixel AP after the last step, mean over all C categories",
    "image_a_auroc": "image A-AUROC (CDAD): (1/T) sum_i mean_{c seen by step i} R[i, c]",
    "pixel_a_auroc": "pixel A-AUROC (CDAD), as image_a_auroc on pixel AUROC",
    "image_fm_vs_joint": "FM as ReplayCAD defines it: the joint model's image AUROC minus the "
                         "continual model's after the last task, mean over the categories",
    "pixel_ap_fm_vs_joint": "as image_fm_vs_joint, on pixel AP",
    "image_fm_memory_gap": "FM as UCAD defines it: image AUROC with an unlimited memory minus "
                           "with the limited one, after the last task (not forgetting over time; "
                           "never matched)",
    "pixel_ap_fm_memory_gap": "as image_fm_memory_gap, on pixel AP (never matched)",
    "image_auroc_average_unstated": "an 'average image AUROC' whose step and averaging the "
                                    "source does not state (e.g. an abstract); never matched",
}
#: the columns of the published CSV
PUBLISHED_COLUMNS = ("method", "venue", "dataset", "protocol", "metric", "definition", "value",
                     "source", "caveats")


def run_protocol(run: RunInfo) -> str:
    """The protocol of a run: its named split, ``custom_tasks`` or ``one_category``."""
    data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    tasks = data.get("tasks")
    if isinstance(tasks, str):
        return tasks
    return CUSTOM if tasks else ONE_CATEGORY


def run_dataset(categories: list[str]) -> str | None:
    """"MVTec AD" or "VisA" when a run's categories are exactly that dataset's, else None."""
    for key, names in DATASET_CATEGORIES.items():
        if sorted(categories) == sorted(names):
            return DATASET_NAMES[key]
    return None


def category_matrix(rows: pd.DataFrame, metric: str, n_steps: int,
                    n_columns: int) -> np.ndarray:
    """(steps, categories) values of ``metric`` from one run's per-category rows (NaN where
    not measured)."""
    R = np.full((n_steps, n_columns), np.nan)
    mine = rows[(rows["metric"] == metric) & (rows["step"] >= 0) & (rows["eval_index"] >= 0)]
    R[mine["step"].to_numpy(), mine["eval_index"].to_numpy()] = mine["value"].to_numpy()
    return R


def literature_values(df: pd.DataFrame, runs: list[RunInfo]) -> pd.DataFrame:
    """One row per (run, quantity): protocol, dataset, method, strategy, seed, metric, value."""
    info = {str(run.path): run for run in runs}
    out = []
    finals: dict[tuple, np.ndarray] = {}
    pending = []
    for (run_dir, method, strategy, seed), rows in df.groupby(
            ["run_dir", "method", "strategy", "seed"], sort=True):
        run = info.get(str(run_dir))
        if run is None:
            continue
        categories = [c for _, c in sorted(set(zip(rows.loc[rows["eval_index"] >= 0,
                                                            "eval_index"],
                                                   rows.loc[rows["eval_index"] >= 0,
                                                            "eval_task"], strict=True)))]
        tasks = run_tasks(run) or [[c] for c in categories]
        position = {c: j for j, c in enumerate(categories)}
        groups = [[position[c] for c in task] for task in tasks]
        protocol = run_protocol(run)
        base = dict(run_dir=run_dir, protocol=protocol, dataset=run_dataset(categories),
                    method=method, strategy=strategy, seed=int(seed))
        columns = ONE_COLUMNS if protocol == ONE_CATEGORY else XY_COLUMNS
        for metric in sorted({m for _, m, _ in columns}):
            R = category_matrix(rows, metric, len(groups), len(categories))
            finals[(protocol, method, strategy, int(seed), metric)] = R[-1]
            for _, wanted, quantity in columns:
                if wanted != metric:
                    continue
                if quantity == "final":
                    value = final_mean(R)
                elif quantity == "a_auroc":
                    value = a_auroc(R, groups)
                else:
                    pending.append((base, metric, R[-1]))
                    continue
                out.append({**base, "metric": metric, "quantity": quantity, "value": value})
    for base, metric, final in pending:
        joint = finals.get((base["protocol"], base["method"], "joint", base["seed"], metric))
        value = (fm_versus_joint(final, joint) if joint is not None and base["strategy"] != "joint"
                 else float("nan"))
        out.append({**base, "metric": metric, "quantity": "fm_joint", "value": value})
    return pd.DataFrame(out)


def published_rows(path: Path = PUBLISHED) -> list[dict[str, str]]:
    """The rows of the published-numbers CSV, each checked by :func:`check_published_row`."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in PUBLISHED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}; the header must be "
                            f"{','.join(PUBLISHED_COLUMNS)}")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        check_published_row(row, f"{path}, line {line}")
    return rows


def check_published_row(row: dict[str, str], where: str) -> None:
    """A published row is usable: a known protocol and metric key, a value in [0, 1] (AUROC and
    AP are fractions; an FM, a difference of two, in [-1, 1]) and a non-empty source, definition
    and caveats. Raises :class:`DataError` naming ``where``."""
    protocols = {ONE_CATEGORY, *NAMED_SPLITS}
    if row.get("protocol") not in protocols:
        raise DataError(f"{where}: protocol {row.get('protocol')!r} is not one of "
                        f"{', '.join(sorted(protocols))}")
    if row.get("metric") not in PUBLISHED_METRICS:
        raise DataError(f"{where}: metric {row.get('metric')!r} is not a known key; use one of "
                        f"{', '.join(PUBLISHED_METRICS)} or add the key and its definition to "
                        "PUBLISHED_METRICS in cl_bench/report/literature.py")
    for column in ("source", "definition", "caveats"):
        if not (row.get(column) or "").strip():
            raise DataError(f"{where}: empty {column!r}; every published number names where it "
                            "was read, what it means and its caveats, or is left out")
    try:
        value = float(row.get("value") or "")
    except ValueError:
        value = float("nan")
    low = -1.0 if "_fm_" in str(row["metric"]) else 0.0
    if not low <= value <= 1:
        raise DataError(f"{where}: value {row.get('value')!r} of {row['metric']} is not a number "
                        f"in [{low:g}, 1]; write fractions (0.972, not 97.2)")


def _cell(values: pd.Series) -> str:
    values = values.dropna() * 100
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.1f} (n=1)"
    return f"{values.mean():.1f} ± {values.std(ddof=1):.1f} (n={len(values)})"


def literature_section(df: pd.DataFrame, runs: list[RunInfo],
                       published: list[dict[str, str]] | None = None) -> list[str]:
    """The markdown lines of the section (empty when no run has per-category rows)."""
    values = literature_values(df, runs)
    if values.empty:
        return []
    published = published_rows() if published is None else published
    lines = ["## As the literature reports it", "",
             "The same records, summarised as the papers tabulate them (formulas and sources: "
             "docs/metrics.md, \"Metrics as the literature reports them\"). Percentages, "
             "mean ± std over seeds (n). cl-bench's own metrics are in the Summary above; these "
             "tables rank nothing.", ""]
    for protocol, mine in values.groupby("protocol", sort=True):
        columns = ONE_COLUMNS if protocol == ONE_CATEGORY else XY_COLUMNS
        split = NAMED_SPLITS.get(protocol)
        title = (f"{protocol} ({split.setting}, {DATASET_NAMES[split.dataset]}; IUF, CDAD)"
                 if split else "one category per task (UCAD, ReplayCAD)"
                 if protocol == ONE_CATEGORY else "tasks of several categories (custom)")
        lines += [f"### Protocol: {title}", "",
                  "| method / strategy | " + " | ".join(c[0] for c in columns) + " |",
                  "| --- |" + " ---: |" * len(columns)]
        for (method, strategy), cell in mine.groupby(["method", "strategy"], sort=True):
            cells = [_cell(cell.loc[(cell["metric"] == m) & (cell["quantity"] == q), "value"])
                     for _, m, q in columns]
            lines.append(f"| {method} / {strategy} | " + " | ".join(cells) + " |")
        lines.append("")
        if protocol == ONE_CATEGORY:
            lines += ["FM (ReplayCAD) = the joint run of the same method and seed minus this "
                      "run, averaged over the categories; \"–\" where the report holds no such "
                      "joint run. UCAD's FM (the gap between a large and a small memory bank) "
                      "cannot be computed from a continual run and is not shown.", ""]
        datasets = set(mine["dataset"].dropna())
        shown = [row for row in published if row["protocol"] == protocol
                 and row["dataset"] in datasets
                 and any(PUBLISHED_METRIC.get((m, q)) == row["metric"] for _, m, q in columns)]
        if shown:
            lines += ["Published, not reproduced (context only; other data, settings and "
                      "seeds; never ranked):", "",
                      "| method | venue | dataset | metric | value | source | caveats |",
                      "| --- | --- | --- | --- | ---: | --- | --- |"]
            lines += [f"| {r['method']} | {r['venue']} | {r['dataset']} | {r['metric']} | "
                      f"{float(r['value']) * 100:.1f} | {r['source']} | {r['caveats']} |"
                      for r in shown]
            lines.append("")
    return lines
