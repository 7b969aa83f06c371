"""The report's tables against an independent, plain-Python recomputation from records.csv.

Reads every records.csv with the csv module (not the report's loader), rebuilds R per run with
dicts, applies the formulas of docs/metrics.md written out below, aggregates with
``statistics``, and compares with the CSV tables the report wrote.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from report_fabricate import make_experiment, write_run

from cl_bench.report.build import compute, write_tables

METRICS = ("image_auroc", "pixel_auroc")


def read_all_records(root: Path) -> list[dict[str, str]]:
    """The rows of every complete run (manifest status "complete"; the report leaves the others
    out)."""
    rows = []
    for path in sorted(root.rglob("records.csv")):
        manifest = path.parent / "manifest.json"
        if not manifest.is_file() or json.loads(manifest.read_text())["status"] != "complete":
            continue
        with path.open(newline="") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def recompute(rows: list[dict[str, str]], metric: str) -> dict[tuple[str, str], dict]:
    """{(method, strategy): {quantity: [per-run values]}} straight from the formulas."""
    runs: dict[tuple, dict] = defaultdict(lambda: {"R": {}, "b": {}, "pooled": {}, "T": 0})
    for row in rows:
        if row["metric"] != metric:
            continue
        run = runs[(row["run_id"], row["method"], row["strategy"], row["seed"], row["order"])]
        step, j, value = int(row["step"]), int(row["eval_index"]), float(row["value"])
        if row["eval_task"] == "pooled":
            run["pooled"][step] = value
        elif step == -1:
            run["b"][j] = value
        else:
            run["R"][(step, j)] = value
        run["T"] = max(run["T"], j + 1)
    out: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    # R*_k of intransigence: R[k, k] of the cumulative run of the same detector, seed and order
    # (same task order here, so by position); never the joint run
    cumulative = {(method, seed, order): run["R"]
                  for (_, method, strategy, seed, order), run in runs.items()
                  if strategy == "cumulative"}
    for (_, method, strategy, seed, order), run in runs.items():
        R, b, T = run["R"], run["b"], run["T"]
        last = T - 1
        values = out[(method, strategy)]
        # a cell is defined when it was recorded with a finite value; each formula averages the
        # terms that are defined (the documented NaN rule) and gives no value when none is
        defined = {cell for cell, value in R.items() if math.isfinite(value)}
        terms: dict[str, list[float]] = defaultdict(list)
        kept, learnt = [], []
        for j in range(T):
            if (last, j) in defined:
                terms["acc"].append(R[(last, j)])
            reference = cumulative.get((method, seed, order))
            if (strategy not in ("joint", "cumulative") and reference is not None
                    and (j, j) in defined):
                terms["intransigence"].append(reference[(j, j)] - R[(j, j)])
        for j in range(T - 1):
            earlier = [R[(k, j)] for k in range(j, last) if (k, j) in defined]
            if earlier and (last, j) in defined:
                terms["fm"].append(max(earlier) - R[(last, j)])
            if (j, j) in defined and (last, j) in defined:
                terms["bwt"].append(R[(last, j)] - R[(j, j)])
                kept.append(R[(last, j)] - 0.5)
                learnt.append(R[(j, j)] - 0.5)
        for j in range(1, T):
            if (j - 1, j) in defined and math.isfinite(b.get(j, math.nan)):
                terms["fwt"].append(R[(j - 1, j)] - b[j])
        for quantity, quantity_terms in terms.items():
            values[quantity].append(sum(quantity_terms) / len(quantity_terms))
        # retention: weights w_j = max(gain - 0.05, 0), retained fraction clipped to [0, 1]
        weights = [max(g - 0.05, 0.0) for g in learnt]
        if sum(weights) > 0:
            fractions = [min(max(k / g, 0.0), 1.0) if w > 0 else 0.0
                         for k, g, w in zip(kept, learnt, weights, strict=True)]
            values["retention"].append(
                sum(w * f for w, f in zip(weights, fractions, strict=True)) / sum(weights))
        if math.isfinite(run["pooled"].get(last, math.nan)):
            values["pooled"].append(run["pooled"][last])
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    exp = make_experiment(root, maps=False)
    write_run(exp, "running", "hybrid", 3, steps=[0, 1], status="running")
    write_run(exp, "joint", "stpm", 0, strategy="joint")
    for seed in (0, 1, 2):
        write_run(exp, f"cumulative{seed}", "stpm", seed, strategy="cumulative", shift=0.03)
    data = compute([exp])
    out = root / "tables"
    write_tables(data, out)
    return exp, out


@pytest.mark.parametrize("metric", METRICS)
def test_summary_table_matches_independent_recomputation(report, metric: str) -> None:
    exp, out = report
    expected = recompute(read_all_records(exp), metric)
    table = pd.read_csv(out / f"summary_{metric}.csv")
    assert len(table) == len(expected) == 4
    checked = 0
    for row in table.to_dict("records"):
        values = expected[(row["method"], row["strategy"])]
        for quantity in ("acc", "fm", "bwt", "fwt", "retention", "intransigence", "pooled"):
            runs = values.get(quantity, [])
            if f"{quantity}_mean" not in row:  # no run defines it: no column
                assert not runs, quantity
                continue
            mean, std = row[f"{quantity}_mean"], row[f"{quantity}_std"]
            count = row[f"{quantity}_count"]
            assert count == len(runs), (row["method"], row["strategy"], quantity)
            if not runs:
                assert math.isnan(mean)
                continue
            assert mean == pytest.approx(statistics.mean(runs), abs=1e-12)
            if len(runs) > 1:
                assert std == pytest.approx(statistics.stdev(runs), abs=1e-12)
            else:
                assert math.isnan(std)
            checked += 1
    assert checked >= 12


def test_running_run_enters_nothing(report) -> None:
    _, out = report
    table = pd.read_csv(out / "summary_image_auroc.csv").set_index("method / strategy")
    hybrid = table.loc["hybrid / naive"]
    assert hybrid["acc_count"] == 3 and hybrid["fwt_count"] == 3  # the running run is left out
    assert table.loc["stpm / joint", "fm_count"] == 0
    assert table.loc["stpm / naive", "intransigence_count"] == 3
    assert table.loc["hybrid / naive", "intransigence_count"] == 0  # no cumulative hybrid


def test_final_per_task_matches_independent_recomputation(report) -> None:
    exp, out = report
    finals: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    rows = read_all_records(exp)
    last_step = max(int(r["step"]) for r in rows)
    for row in rows:
        if (row["metric"] == "image_auroc" and row["eval_task"] != "pooled"
                and int(row["step"]) == last_step):
            finals[(row["eval_task"], row["method"], row["strategy"])].append(float(row["value"]))
    table = pd.read_csv(out / "final_per_task_image_auroc.csv").set_index("task")
    for (task, method, strategy), values in finals.items():
        column = f"{method} / {strategy}"
        assert table.loc[task, f"{column}_mean"] == pytest.approx(statistics.mean(values))
        assert table.loc[task, f"{column}_count"] == len(values)
