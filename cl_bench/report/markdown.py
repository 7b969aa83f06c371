"""``report.md``: a self-contained account of an experiment for a reader who ran nothing.

Sections: experiment (what was run), protocol and formulas, state of the runs, summary tables
with the paired comparison, final per-task tables, R matrices, figures, manifest facts
(versions, device, durations, memory).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from cl_bench import __version__
from cl_bench.metrics.continual import RETENTION_MARGIN
from cl_bench.report.labels import config_label, config_sort_key, metric_label
from cl_bench.report.tables import Table, TextTable, markdown_grid

if TYPE_CHECKING:
    from cl_bench.report.report_data import ReportData, SavedFigure


def formula_table(fpr_limit: float) -> str:
    """The formula table of report.md (Markdown)."""
    c_pro = f"{fpr_limit / 2:g} (AU-PRO up to FPR {fpr_limit:g})"
    rows = [
        ("ACC", "mean_j R[T-1, j]", "T"),
        ("FM", "mean_{j<T-1} ( max_{j<=l<T-1} R[l, j] - R[T-1, j] ) "
               "(Chaudhry et al. 2018, l >= j)", "T-1"),
        ("BWT", "mean_{j<T-1} ( R[T-1, j] - R[j, j] ) (Lopez-Paz & Ranzato 2017)", "T-1"),
        ("FWT", "mean_{j>=1} ( R[j-1, j] - b_j ) (Lopez-Paz & Ranzato 2017)", "T-1"),
        ("Retention", "sum_{j<T-1} w_j f_j / sum_{j<T-1} w_j, f_j = clip((R[T-1, j] - c) / "
                      f"(R[j, j] - c), 0, 1), w_j = max(R[j, j] - c - {RETENTION_MARGIN:g}, 0); "
                      "in [0, 1]; 95% bootstrap interval over tasks; c = 0.5 (AUROC), "
                      f"{c_pro}", "sum of w_j"),
        ("Intransigence", "mean_k ( R*_k - R[k, k] ), R*_k = R[k, k] of the cumulative run "
                          "(trained on tasks 0..k) of the same detector, seed and order "
                          "(Chaudhry et al. 2018); only with such a run", "T"),
        ("Pooled (final)", "the metric over the pooled test sets of all tasks after the final "
                           "task", "-"),
    ]
    return markdown_grid(["quantity", "formula", "divisor"], rows).replace("---:", "---")


def protocol_text(fpr_limit: float) -> str:
    """The protocol and formula section; AU-PRO's limit and chance level follow ``fpr_limit``
    (eval.pro_fpr_limit of the reported runs)."""
    return f"""\
- One run = one detector (method), one continual-learning strategy, one seed, one task order.
  Each task is one product category, trained on its defect-free training images only.
- Before any training the untrained model is evaluated on every task (row -1, b_j). After
  training task i the same model is evaluated on the test set of every task j, which fills row i
  of the result matrix R (T x T). The pooled metric is computed over the test images of tasks
  0..i together, without telling the model the task (task-agnostic).
- Fixed epochs per task; no model selection on test data. The `joint` strategy trains one model
  on all tasks at once (upper bound; only its final row exists, so FM, BWT and FWT are
  undefined). The `independent` strategy trains one detector per task and is told the task at
  test time: it is a **task-aware oracle**, not a continual learner.
- Only complete runs enter the tables, figures and tests (see "State of the runs").

Formulas (R[i, j] = metric on task j after training task i, rows 0..T-1, b_j = untrained):

{formula_table(fpr_limit)}
Higher is better for all but FM and intransigence. FM, BWT and retention run over j < T-1: the
last task is tested right after it is learnt and has nothing to retain or forget yet. The
divisors hold for a fully evaluated R: a NaN cell (not evaluated, or a metric undefined on that
task) is left out of its mean. Retention weighs each task by its gain above the margin and
clips its retained fraction to [0, 1], so a task learnt barely above chance weighs little
instead of exploding its own ratio. Per-run values come from
`cl_bench.metrics.continual`; tables show mean ± sample std (ddof 1) over seeds and task orders
(a single run: its value alone); the CSV files also hold the counts.

Anomaly metrics: image AUROC/AP rank the image score (the maximum of the smoothed anomaly map);
pixel AUROC/AP rank every pixel of the task's test set; AU-PRO is the MVTec AD per-region
overlap integrated up to a false-positive rate of {fpr_limit:g} and divided by {fpr_limit:g}
(chance level {fpr_limit / 2:g}).
"""


def _fmt_seconds(seconds: Any) -> str:
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "–"
    if not np.isfinite(value):
        return "–"
    return f"{value / 3600:.2f} h" if value >= 3600 else (
        f"{value / 60:.1f} min" if value >= 60 else f"{value:.1f} s")


def _rel(path: Path, out_dir: Path) -> str:
    return Path(os.path.relpath(path, out_dir)).as_posix()


def _experiment_section(data: ReportData) -> list[str]:
    records = data.records
    experiments = sorted({run.experiment for run in data.runs})
    configs = sorted({(m, s, bool(t)) for m, s, t in
                      records[["method", "strategy", "task_aware"]].itertuples(index=False)},
                     key=config_sort_key)
    seeds = sorted(set(records["seed"]))
    lines = [
        "## Experiment", "",
        f"- Experiment(s): {', '.join(experiments)}",
        f"- Method / strategy combinations: {', '.join(config_label(*c) for c in configs)}",
        f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)})",
        f"- Task orders (labels): {', '.join(sorted(set(map(str, records['order']))))}",
        f"- Metrics: {', '.join(metric_label(m, data.fpr_limit) for m in data.metrics)}",
        f"- Runs: {len(data.runs)} run folder(s), {len({m.key()['run_id'] for m in data.matrices})}"
        " with records",
    ]
    for k, seq in enumerate(data.sequences, 1):
        prefix = f"Task sequence {k}" if len(data.sequences) > 1 else "Task sequence"
        lines.append(f"- {prefix} (T = {len(seq)}): {' → '.join(seq)}")
    return [*lines, ""]


def _status_section(data: ReportData) -> list[str]:
    lines = ["## State of the runs", ""]
    body = []
    for run in data.runs:
        matrices = [m for m in data.matrices if m.run_id == run.run_id
                    and m.metric == data.metrics[0]]
        done = ", ".join(f"{m.method}/{m.strategy} s{m.seed}: {m.steps_done}/"
                         f"{len(m.expected_rows)}" for m in matrices) or "no records yet"
        if not run.complete:
            done = f"left out: not complete ({run.n_records} records)"
        body.append([run.run_id, run.experiment, run.status, done])
    lines.append(markdown_grid(["run", "experiment", "status", "evaluated steps"], body))
    if data.excluded:
        lines.append("**Warning: not every run is complete.** " + "; ".join(
            f"{run.run_id} is {run.status}" if run.manifest
            else f"{run.run_id} has no manifest.json (status unknown)" for run in data.excluded)
            + ". These runs are left out of every table, figure and paired test below: "
            + ", ".join(f"`{run.path}`" for run in data.excluded) + ".")
        lines.append("")
    for note in data.notes:
        lines.append(f"- Note: {note}")
    return [*lines, ""]


def _table_block(table: Table | TextTable, out_dir: Path, tables_dir: Path) -> list[str]:
    files = ", ".join(f"[{ext}]({_rel(tables_dir / f'{table.name}.{ext}', out_dir)})"
                      for ext in ("csv", "md", "tex"))
    return [f"### {table.title}", "", table.to_markdown(), f"*{table.caption}* ({files})", ""]


def manifest_steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-step timing entries: ``durations.steps`` or the runner's top-level ``steps``."""
    durations = manifest.get("durations")
    steps = durations.get("steps") if isinstance(durations, dict) else None
    if steps is None:
        steps = manifest.get("steps")
    return [s for s in steps or [] if isinstance(s, dict)]


def manifest_facts(manifest: dict[str, Any]) -> dict[str, str]:
    """Device, commit, start/end, durations and memory of a manifest, as display strings."""
    durations = manifest.get("durations")
    total = durations.get("total_s") if isinstance(durations, dict) else None
    total = manifest.get("total_s") if total is None else total
    git = manifest.get("git")
    commit = manifest.get("git_commit") or (git.get("commit") if isinstance(git, dict) else git)
    dirty = isinstance(git, dict) and git.get("dirty")
    device = str(manifest.get("device", "–"))
    if manifest.get("device_name") and manifest["device_name"] != manifest.get("device"):
        device += f" ({manifest['device_name']})"
    steps = manifest_steps(manifest)
    memory = manifest.get("peak_memory_mb")
    return {
        "device": device,
        "git commit": (str(commit)[:10] + (" (local changes)" if dirty else "")) if commit
        else "–",
        "started": str(manifest.get("started") or manifest.get("created") or "–"),
        "finished": str(manifest.get("finished") or "–"),
        "total": _fmt_seconds(total),
        "training": _fmt_seconds(sum(float(s.get("train_s") or 0.0) for s in steps)),
        "evaluation": _fmt_seconds(sum(float(s.get("eval_s") or 0.0) for s in steps)),
        "peak memory (MB)": f"{float(memory):.0f}" if isinstance(memory, (int, float)) else "–",
    }


def _manifest_section(data: ReportData) -> list[str]:
    lines = ["## Runs: manifest facts", ""]
    facts = [manifest_facts(run.manifest) for run in data.runs]
    header = ["run", *(facts[0].keys() if facts else [])]
    body = [[run.run_id, *fact.values()] for run, fact in zip(data.runs, facts, strict=True)]
    lines.append(markdown_grid(header, body))
    lines += _step_durations(data)
    versions: dict[str, set[str]] = {}
    for run in data.runs:
        for name, version in (run.manifest.get("versions") or {}).items():
            versions.setdefault(str(name), set()).add(str(version))
    if versions:
        lines += ["### Versions", "", markdown_grid(
            ["package", "version(s)"],
            [[name, ", ".join(sorted(v))] for name, v in sorted(versions.items())])]
    warnings_seen = sorted({str(w) for run in data.runs for w in run.manifest.get("warnings")
                            or []})
    if warnings_seen:
        lines += ["### Warnings recorded by the runs", "",
                  *(f"- {w}" for w in warnings_seen), ""]
    return lines


def _step_durations(data: ReportData) -> list[str]:
    per_method: dict[str, list[tuple[float, float]]] = {}
    for run in data.runs:
        for step in manifest_steps(run.manifest):
            if int(step.get("step", 0)) < 0:
                continue  # the untrained evaluation has no training time
            per_method.setdefault(str(step.get("method", "?")), []).append(
                (float(step.get("train_s") or 0.0), float(step.get("eval_s") or 0.0)))
    if not per_method:
        return []
    body = [[method, str(len(values)), _fmt_seconds(np.mean([v[0] for v in values])),
             _fmt_seconds(np.mean([v[1] for v in values]))]
            for method, values in sorted(per_method.items())]
    return ["### Time per training step", "",
            markdown_grid(["method", "steps", "mean training time", "mean evaluation time"],
                          body)]


def _config_section(data: ReportData) -> list[str]:
    run = next((r for r in data.runs if r.config), None)
    if run is None:
        return []
    text = yaml.safe_dump(run.config, sort_keys=False, default_flow_style=False)
    return ["## Configuration", "",
            f"Resolved configuration of run {run.run_id} (`config.yaml`; other runs differ at "
            "most in seed, method and order, see their folders):", "",
            "<details><summary>config.yaml</summary>", "", "```yaml", text.rstrip(), "```", "",
            "</details>", ""]


def render_report(data: ReportData, tables: dict[str, Table | TextTable],
                  figures: Sequence[SavedFigure], out_dir: Path, paths: Sequence[Path]) -> str:
    """The text of ``report.md``; links are relative to ``out_dir``."""
    tables_dir = out_dir / "tables"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    experiments = ", ".join(sorted({run.experiment for run in data.runs}))
    lines = [
        f"# cl-bench report: {experiments}", "",
        "This report covers the continual learning of unsupervised anomaly detectors "
        "(knowledge distillation from a frozen teacher) with one product category per task: "
        "after each task, the same model is tested on every task. It was generated on "
        f"{now} by cl-bench {__version__} from {', '.join(f'`{p}`' for p in paths)}.", "",
    ]
    lines += _experiment_section(data)
    lines += ["## Protocol", "", protocol_text(data.fpr_limit)]
    lines += _status_section(data)
    lines += ["## Summary", ""]
    for metric in data.metrics:
        lines += _table_block(tables[f"summary_{metric}"], out_dir, tables_dir)
    if "comparison" in tables:
        lines += _table_block(tables["comparison"], out_dir, tables_dir)
    else:
        lines += ["No paired comparison: a pair (report.compare, or by default the hybrid "
                  "against each detector, each strategy against naive, routing against "
                  "independent) needs both sides over at least 3 seeds.", ""]
    lines += data.literature
    lines += ["## Final value of each task", ""]
    for metric in data.metrics:
        lines += _table_block(tables[f"final_per_task_{metric}"], out_dir, tables_dir)
    diagnostics = [t for name, t in tables.items() if name.startswith("routing_diagnostics")]
    if diagnostics:
        lines += ["## Routing diagnostics", ""]
        for table in diagnostics:
            lines += _table_block(table, out_dir, tables_dir)
    lines += ["## Result matrices", ""]
    for name, table in tables.items():
        if name.startswith("R_"):
            lines += _table_block(table, out_dir, tables_dir)
    lines += ["## Figures", ""]
    for figure in figures:
        png = next(p for p in figure.paths if p.suffix == ".png")
        pdf = next((p for p in figure.paths if p.suffix == ".pdf"), None)
        lines += [f"![{figure.caption}]({_rel(png, out_dir)})", "",
                  f"*{figure.caption}*" + (f" ([PDF]({_rel(pdf, out_dir)}))" if pdf else ""), ""]
    lines += _manifest_section(data)
    lines += _config_section(data)
    lines += ["## Files", "",
              f"- `{_rel(tables_dir, out_dir)}/`: every table as CSV (mean, std, count, best "
              "flag per column), Markdown and LaTeX (booktabs); `per_run_metrics.csv` holds the "
              "continual metrics of each run before aggregation.",
              "- `figures/`: every figure as PNG and PDF.", ""]
    return "\n".join(lines)
