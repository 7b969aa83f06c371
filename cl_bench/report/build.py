"""``build_report``: records of one or many runs -> tables, figures and ``report.md``."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cl_bench.errors import DataError
from cl_bench.records import RUN_KEY
from cl_bench.report import plots
from cl_bench.report.compare import compare_runs, compare_table, configured_pairs, default_pairs
from cl_bench.report.labels import (
    ROUTING_DIAGNOSTICS,
    RecordedDetectors,
    config_sort_key,
    current_recorded_detectors,
    detectors_as_recorded,
    recorded_detectors,
)
from cl_bench.report.literature import literature_section
from cl_bench.report.load import MapSet, RunInfo, load_runs_with_info, read_map_file
from cl_bench.report.matrices import (
    DEFAULT_FPR_LIMIT,
    aggregate_matrices,
    build_matrices,
    final_per_task,
    metrics_present,
    step_curves,
)
from cl_bench.report.names import Slugs
from cl_bench.report.report_data import ReportData, SavedFigure
from cl_bench.report.statistics import (
    CONFIG_KEY,
    aggregate,
    calibration_gaps,
    per_run_summary,
    routing_diagnostics,
    side_quantities,
    task_id_curves,
)
from cl_bench.report.tables import (
    Table,
    TextTable,
    final_task_table,
    matrix_table,
    routing_diagnostics_table,
    summary_table,
)
from cl_bench.report.task_level import fold_categories
from cl_bench.report.variants import label_variants


@dataclass
class ReportResult:
    """What :func:`build_report` wrote."""

    out_dir: Path
    markdown: Path
    tables: dict[str, Table | TextTable]
    table_files: list[Path]
    figures: list[SavedFigure]
    data: ReportData


def compute(paths: Iterable[str | Path], metrics: Sequence[str] | None = None) -> ReportData:
    """Load the runs below ``paths`` and compute every number the report shows.

    Only complete runs (manifest status ``complete``) enter the tables, figures and tests; the
    others (running, failed, interrupted, or without a manifest) are listed in
    ``ReportData.excluded`` and in the notes. Among the complete runs, two with the same
    (method, strategy, seed, order) are an error naming both folders unless their settings
    differ (then each is labelled by its settings, :mod:`cl_bench.report.variants`), and
    AU-PRO values computed up to different FPR limits are never pooled (an error naming them).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df, runs = load_runs_with_info(paths)
    notes = [str(w.message) for w in caught]
    excluded = [run for run in runs if not run.complete]
    complete_dirs = {str(run.path) for run in runs if run.complete}
    if excluded:
        notes.append("left out of every table, figure and test because they are not complete: "
                     + "; ".join(f"{run.path} ({_status_text(run)})" for run in excluded))
    df = df[df["run_dir"].isin(complete_dirs)]
    if df.empty:
        raise DataError("no complete run below " + ", ".join(map(str, paths)) + ": "
                        + "; ".join(f"{run.path} is {_status_text(run)}" for run in excluded)
                        + ". The report covers complete runs only; wait for the runs to end or "
                        "resume them (cl-bench run --resume RUN_DIR)")
    complete = [run for run in runs if run.complete]
    recorded = recorded_detectors([(run.path, run.manifest) for run in complete],
                                  sorted(set(df["method"])))
    with detectors_as_recorded(recorded):
        data = _numbers(df, runs, metrics, notes)
    data.excluded, data.detectors = excluded, recorded
    return data


def _numbers(df: pd.DataFrame, runs: list[RunInfo], metrics: Sequence[str] | None,
             notes: list[str]) -> ReportData:
    """:func:`compute` past loading: the complete runs' records ``df`` into every number."""
    df, variant_notes = label_variants(df, {str(run.path): run.config for run in runs})
    notes += variant_notes
    check_duplicate_runs(df)
    literature = literature_section(df, [r for r in runs if r.complete])
    df = fold_categories(df, runs)  # tasks of several categories: one column per task
    chosen = metrics_present(df, metrics)
    fpr_limit, fpr_notes = _common_fpr_limit(df, [r for r in runs if r.complete], chosen)
    notes += fpr_notes
    matrices = build_matrices(df, chosen)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        per_run = per_run_summary(matrices)
    per_run = pd.concat([per_run, side_quantities(df, per_run), calibration_gaps(df, per_run)],
                        ignore_index=True)
    notes += list(dict.fromkeys(str(w.message) for w in caught))
    summary = aggregate(per_run)
    final = aggregate(final_per_task(matrices), by=(*CONFIG_KEY, "metric", "task"))
    steps = step_curves(matrices).melt(
        id_vars=[*RUN_KEY, "metric", "step"],
        value_vars=["seen_average", "pooled"], var_name="quantity", value_name="value")
    curves = aggregate(steps, by=(*CONFIG_KEY, "metric", "step", "quantity"))
    counts = Counter(m.tasks for m in matrices if m.metric == chosen[0])
    sequences = [seq for seq, _ in counts.most_common()]
    for m in matrices:
        if m.metric == chosen[0] and not m.complete:
            notes.append(
                f"run {m.run_id} ({m.method}/{m.strategy}, seed {m.seed}) is complete but "
                f"{m.steps_done} of {len(m.expected_rows)} evaluation step(s) are recorded; "
                "missing cells are NaN and values that need them are left out of the means "
                "(see the count columns of the CSV tables)")
    pairs = configured_pairs(run.config for run in runs if run.complete)
    return ReportData(records=df, runs=runs, metrics=chosen, matrices=matrices, per_run=per_run,
                      summary=summary, final=final, curves=curves,
                      paired=compare_runs(per_run, default_pairs(per_run) if pairs is None
                                          else pairs),
                      sequences=sequences, notes=notes,
                      fpr_limit=fpr_limit, literature=literature)


def _status_text(run: RunInfo) -> str:
    return run.status if run.manifest else "no manifest.json, status unknown"


def check_duplicate_runs(df: pd.DataFrame) -> None:
    """Two run folders with the same (method, strategy, seed, order), the run key less the run
    id (:data:`cl_bench.records.RUN_KEY`; its task awareness follows the strategy): an error
    naming both."""
    key = [k for k in RUN_KEY if k != "run_id"]
    folders = df.drop_duplicates([*key, "run_dir"]).groupby(key, sort=True)["run_dir"]
    for (method, strategy, _, seed, order), dirs in folders:
        if len(dirs) > 1:
            raise DataError(f"{method}/{strategy} seed {seed} order {order} is in several run "
                            f"folders: {', '.join(sorted(dirs))}; each (method, strategy, seed, "
                            "order) must be reported once: move or delete the duplicate")


def _common_fpr_limit(df: pd.DataFrame, runs: Sequence[RunInfo],
                      metrics: Sequence[str]) -> tuple[float, list[str]]:
    """The one AU-PRO FPR limit of the runs with AU-PRO records, and notes; an error when the
    runs differ (AU-PRO (0.05) and AU-PRO (0.3) are different metrics)."""
    if "au_pro" not in metrics:
        limits = {r.pro_fpr_limit for r in runs} - {None}
        return (limits.pop() if len(limits) == 1 else DEFAULT_FPR_LIMIT), []
    with_pro = set(df.loc[df["metric"] == "au_pro", "run_dir"])
    by_limit: dict[float, list[str]] = {}
    missing = []
    for run in runs:
        if str(run.path) not in with_pro:
            continue
        limit = run.pro_fpr_limit
        if limit is None:
            missing.append(str(run.path))
            limit = DEFAULT_FPR_LIMIT
        by_limit.setdefault(limit, []).append(str(run.path))
    if len(by_limit) > 1:
        listed = "; ".join(f"eval.pro_fpr_limit {limit:g}: {', '.join(dirs)}"
                           for limit, dirs in sorted(by_limit.items()))
        raise DataError(f"AU-PRO was computed up to different FPR limits ({listed}); they are "
                        "different metrics and are not pooled in one column: report the runs of "
                        "each limit separately, or leave AU-PRO out (--metric image_auroc ...)")
    notes = []
    if missing:
        notes.append(f"config.yaml has no eval.pro_fpr_limit in {', '.join(missing)}; "
                     f"AU-PRO there is taken as computed up to the default {DEFAULT_FPR_LIMIT:g}")
    return (next(iter(by_limit)) if by_limit else DEFAULT_FPR_LIMIT), notes


def _sequence_suffix(data: ReportData, tasks: tuple[str, ...]) -> str:
    return "" if len(data.sequences) == 1 else f"_order{data.sequences.index(tasks) + 1}"


def task_order(data: ReportData) -> list[str]:
    """Tasks in the order of the most common sequence, then any others."""
    return list(dict.fromkeys(t for seq in data.sequences for t in seq))


def write_tables(data: ReportData, out_dir: Path) -> tuple[dict[str, Table | TextTable],
                                                           list[Path]]:
    tables: dict[str, Table | TextTable] = {}
    file_name = Slugs()  # a label may hold spaces, brackets, quotes, a path: never a file name
    for metric in data.metrics:
        tables[f"summary_{metric}"] = summary_table(data.summary, metric, data.fpr_limit)
        tables[f"final_per_task_{metric}"] = final_task_table(data.final, metric,
                                                              task_order(data), data.fpr_limit)
    for agg in aggregate_matrices(data.matrices):
        name = (f"R_{agg.metric}__{agg.method}__{agg.strategy}"
                f"{_sequence_suffix(data, agg.tasks)}")
        tables[name] = matrix_table(agg, file_name(name))
    if not data.paired.empty:
        tables["comparison"] = compare_table(
            data.paired, fpr_limit=data.fpr_limit,
            excluded=[str(run.path) for run in data.excluded])
    diagnostics = routing_diagnostics(data.records)
    for config in sorted({(str(m), str(s), bool(t)) for m, s, t in diagnostics[
            ["method", "strategy", "task_aware"]].itertuples(index=False)}, key=config_sort_key):
        table = routing_diagnostics_table(diagnostics, config, task_order(data),
                                          ROUTING_DIAGNOSTICS)
        table.name = file_name(table.name)
        tables[f"routing_diagnostics__{config[0]}__{config[1]}"] = table
    files: list[Path] = []
    for table in tables.values():
        files += table.write(out_dir)
    per_run_path = out_dir / "per_run_metrics.csv"
    data.per_run.to_csv(per_run_path, index=False)
    files.append(per_run_path)
    return tables, files


def load_map_sets(runs: Iterable[RunInfo]) -> list[MapSet]:
    """One map set per (method, strategy): the one of the lowest seed."""
    chosen: dict[tuple[str, str], MapSet] = {}
    for run in runs:
        for path in run.map_files:
            map_set = read_map_file(path)
            key = (map_set.method, map_set.strategy)
            if key not in chosen or map_set.seed < chosen[key].seed:
                chosen[key] = map_set
    return sorted(chosen.values(), key=lambda m: config_sort_key((m.method, m.strategy)))


def load_routing_confusions(runs: Sequence[RunInfo]) -> list[tuple[str, pd.DataFrame]]:
    """The last step's routing confusion matrix of each run and method/seed that saved one."""
    from cl_bench.run.layout import RunLayout

    panels = []
    for info in runs:
        last: dict[str, Path] = {}
        for path in RunLayout(info.path).routing_confusions():  # sorted: the last step wins
            last[path.name.split("__confusion_step")[0]] = path
        for key, path in sorted(last.items()):
            try:
                matrix = pd.read_csv(path, index_col=0)
            except (OSError, ValueError, pd.errors.ParserError) as exc:
                raise DataError(f"{path}: unreadable routing confusion matrix ({exc}); delete "
                                "it or rerun the step") from None
            step = path.stem.split("__confusion_step")[1]
            panels.append((f"{info.run_id[-6:]} {key.replace('__', ' ')} step {int(step)}",
                           matrix))
    return panels


def write_figures(data: ReportData, out_dir: Path, jobs: int | None = None
                  ) -> list[SavedFigure]:
    """Draw every figure of the report into ``out_dir`` (PNG and PDF each), in ``jobs``
    processes (:func:`render_figures`)."""
    colors = plots.method_colors(sorted({m.method for m in data.matrices}))
    planned: list[FigureJob] = []

    def save(draw: tuple, name: str, caption: str) -> None:
        planned.append(FigureJob(name, caption, draw[0], draw[1:]))

    aggs = aggregate_matrices(data.matrices)
    for metric in data.metrics:
        label = data.metric_label(metric)
        for tasks in data.sequences:
            group = [a for a in aggs if a.metric == metric and a.tasks == tasks]
            if not group:
                continue
            suffix = _sequence_suffix(data, tasks)
            order_text = f" Task order: {' → '.join(tasks)}."
            save((plots.plot_forgetting_curves, group, colors), f"forgetting_{metric}{suffix}",
                 f"Forgetting curves, {label}: each task's value before training and after "
                 "every training step, one panel per method/strategy; line = mean over seeds, "
                 f"band = ± std; larger dot = the step that trains the task.{order_text}")
            save((plots.plot_heatmaps, group, colors), f"heatmap_{metric}{suffix}",
                 f"R matrices, {label}: row i = after training task i, column j = test set of "
                 f"task j, mean over seeds written in each cell; blank = not evaluated."
                 f"{order_text}")
        save((plots.plot_average_curves, data.curves, metric, colors, label), f"average_{metric}",
             f"{label} after each training step: left, the average over the tasks seen so far "
             "(mean_{j<=i} R[i, j]); right (where recorded), the task-agnostic metric pooled over "
             "the test sets seen so far. One line per method/strategy, band = ± std over seeds "
             "and orders.")
        save((plots.plot_final_bars, data.final, metric, task_order(data), colors, label),
             f"final_per_task_{metric}",
             f"Final {label} of each task (after the last task), one bar per method/strategy, "
             "error bar = std over seeds and orders.")
    task_id = task_id_curves(data.records)
    if not task_id.empty:
        save((plots.plot_task_id_accuracy, task_id, colors), "task_id_accuracy",
             "Task-identification accuracy after each training step (strategies that route "
             "between experts): share of the test images of the tasks seen so far sent to their "
             "own task's expert; all, defect-free and defective images apart. Line = mean over "
             "seeds and orders, band = ± std.")
    confusions = load_routing_confusions(data.runs)
    if confusions:
        save((plots.plot_routing_confusions, confusions), "routing_confusion",
             "Routing after the last step: test images of each true task (row) by the task "
             "whose expert the router chose (column), one panel per run and method (count "
             "written in, colour = share of the row); off the diagonal = misrouted. Every step's "
             "matrix is in the run folder, routing/<method>__seed<s>__confusion_step<k>.csv.")
    map_sets = load_map_sets(data.runs)
    if map_sets:
        save((plots.plot_map_grid, map_sets, colors), "anomaly_maps",
             "Qualitative anomaly maps after the final task: test image, ground truth, then each "
             "method's map (lowest seed), each method scaled to [0, 1] over the shown images.")
    return render_figures(planned, out_dir, jobs)


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: ``draw(*args)`` returns it; saved as ``name``.png/.pdf."""

    name: str
    caption: str
    draw: Callable[..., Any]
    args: tuple


def _draw_and_save(job: FigureJob, out_dir: Path, recorded: RecordedDetectors | None
                   ) -> list[Path]:
    with detectors_as_recorded(recorded):  # passed on: a worker process starts without it
        return plots.save_figure(job.draw(*job.args), out_dir, job.name)


def default_jobs() -> int:
    """Processes that draw the figures: the CPUs this process may use, at most
    :data:`MAX_FIGURE_JOBS`; 1 (no pool) once torch is loaded, since forking a process whose
    torch has started its thread pools can hang the child (a report at the end of
    ``cl-bench run``)."""
    if "torch" in sys.modules:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_FIGURE_JOBS))


#: the most processes :func:`default_jobs` gives the figures
MAX_FIGURE_JOBS = 8


def render_figures(planned: Sequence[FigureJob], out_dir: Path, jobs: int | None = None
                   ) -> list[SavedFigure]:
    """Draw and save ``planned`` in order; with ``jobs`` > 1 (default :func:`default_jobs`) in
    that many forked processes, each drawing whole figures. Matplotlib draws a figure in one
    thread, and the report's time is almost all drawing and encoding (PNG, PDF), so separate
    processes are what makes it faster; the files are the same either way (a test compares
    them). Where ``fork`` is unavailable (Windows, macOS's default), the figures are drawn here,
    one after the other.
    """
    recorded = current_recorded_detectors()
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: the number of processes drawing figures must be >= 1")
    jobs = min(jobs, len(planned))
    if jobs > 1 and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            paths = list(pool.map(_draw_and_save, planned, [out_dir] * len(planned),
                                  [recorded] * len(planned)))
    else:
        paths = [_draw_and_save(job, out_dir, recorded) for job in planned]
    return [SavedFigure(job.name, job.caption, p) for job, p in zip(planned, paths, strict=True)]


def build_report(paths: Iterable[str | Path] | str | Path, out_dir: str | Path,
                 metrics: Sequence[str] | None = None, jobs: int | None = None) -> Path:
    """Tables (CSV, Markdown, LaTeX), figures (PNG, PDF) and ``report.md`` in ``out_dir``.

    ``paths``: run folders or folders above them; ``metrics``: the metrics to report (default:
    every metric in the records). Returns ``out_dir`` (``out_dir / "report.md"`` is the report);
    :func:`write_report` returns everything it computed and wrote.
    """
    return write_report(paths, out_dir, metrics, jobs).out_dir


def console_summary(paths: Iterable[str | Path] | str | Path,
                    metrics: Sequence[str] | None = None) -> str:
    """The summary tables (Markdown text) of the runs below ``paths``, for a terminal."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    data = compute(list(paths), metrics)
    parts = [f"Summary of {len(data.runs)} run folder(s)"]
    parts += [f"note: {note}" for note in data.notes]
    with detectors_as_recorded(data.detectors):
        for metric in data.metrics:
            table = summary_table(data.summary, metric, data.fpr_limit)
            parts.append(f"{table.title}\n{table.to_markdown()}")
    return "\n".join(parts)


def write_report(paths: Iterable[str | Path] | str | Path, out_dir: str | Path,
                 metrics: Sequence[str] | None = None, jobs: int | None = None) -> ReportResult:
    """Like :func:`build_report`, returning the tables, figures and data it wrote.

    The report is built in a temporary sibling folder and renamed into place
    (:func:`_install`), so ``out_dir`` holds either the whole new report or what it held before
    (nothing, or the previous report), never half of one.
    """
    from cl_bench.report.markdown import render_report

    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    out_dir = Path(out_dir)
    data = compute(paths, metrics)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; a report folder is not private
    except OSError as exc:
        raise DataError(f"{out_dir}: cannot create the report folder ({exc.strerror or exc} "
                        f"on {exc.filename or out_dir.parent}); pass a writable --out DIR, or "
                        "free space on the disk") from None
    try:
        with detectors_as_recorded(data.detectors):
            tables, table_files = write_tables(data, staging / "tables")
            figures = write_figures(data, staging / "figures", jobs)
            (staging / "report.md").write_text(
                render_report(data, tables, figures, staging, paths), encoding="utf-8")
        _install(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    def moved(path: Path) -> Path:
        return out_dir / path.relative_to(staging)

    return ReportResult(
        out_dir=out_dir, markdown=out_dir / "report.md", tables=tables,
        table_files=[moved(p) for p in table_files],
        figures=[SavedFigure(f.name, f.caption, [moved(p) for p in f.paths]) for f in figures],
        data=data)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: what a report folder holds; a folder with anything else is not replaced as a whole
REPORT_ENTRIES = ("report.md", "tables", "figures")


def _install(staging: Path, out_dir: Path) -> None:
    """Move the finished report ``staging`` to ``out_dir`` by renames.

    A new ``out_dir``, or one holding only an earlier report, is replaced as a whole (one
    rename). A folder that holds other files too (``--out`` given as a folder of other things)
    keeps them: ``tables/`` and ``figures/`` are swapped in one rename each, then ``report.md``,
    which is what a reader opens; the earlier entries are deleted only after that.
    """
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    if not out_dir.is_dir():
        raise DataError(f"{out_dir}: is a file, not a folder; pass another --out DIR for the "
                        "report")
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    if all(p.name in REPORT_ENTRIES for p in out_dir.iterdir()):
        out_dir.rename(old / out_dir.name)
        staging.rename(out_dir)
    else:
        for name in ("tables", "figures", "report.md"):
            if (out_dir / name).exists():
                (out_dir / name).rename(old / name)
            (staging / name).rename(out_dir / name)
        staging.rmdir()
    shutil.rmtree(old, ignore_errors=True)
