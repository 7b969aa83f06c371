"""The report's paired comparisons: any pair a paper needs (the ``report.compare`` setting).

A pair names two strategies compared within a detector ("does replay beat naive for RD4AD?")
or two detectors compared within a strategy ("STPM or RD4AD under EWC?"). Without the setting
the report compares (:func:`default_pairs`): the hybrid against each other detector within
every strategy, every strategy against naive within every detector, and routing against
independent within every detector. Where runs differ in a setting (a sweep over task splits:
strategy labels such as ``routing [tasks=mvtec_3x5]``), a strategy is held against naive (or
independent) of the same setting.

Two runs form a pair when they share everything but the compared name: (detector, task order,
seed) for strategies, (strategy, task awareness, task order, seed) for detectors; matched by
that key, never by position. Per pair, metric and quantity (:data:`QUANTITIES`): the paired
t-test and Wilcoxon signed-rank test of :func:`cl_bench.report.statistics._paired_pvalues`,
Holm-Bonferroni over every test of one kind in the whole table (:func:`holm_adjust`), and the
number of paired runs the t-test needs for 80 % power at alpha 0.05 given the observed mean
and standard deviation of the differences (:func:`cl_bench.report.power.paired_runs_needed`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import ValidationError

from cl_bench.config import ComparePair
from cl_bench.errors import ConfigError
from cl_bench.report.labels import (
    HYBRID,
    METRIC_ORDER,
    QUANTITIES,
    QUANTITY_LABELS,
    method_sort_key,
    metric_label,
    strategy_sort_key,
)
from cl_bench.report.matrices import DEFAULT_FPR_LIMIT
from cl_bench.report.power import paired_runs_needed
from cl_bench.report.statistics import (
    ALPHA,
    WILCOXON_TOO_FEW,
    _check_unique_pairs,
    _paired_pvalues,
    holm_adjust,
    wilcoxon_min_pairs,
)
from cl_bench.report.tables import TextTable, _p_text, _wilcoxon_text, latex_escape
from cl_bench.report.variants import base_strategy

#: target power and level of the "n needed" column
POWER = 0.8
COMPARE_COLUMNS = ["metric", "quantity", "kind", "within", "task_aware", "second_task_aware",
                   "first", "second", "n",
                   "first_mean", "second_mean", "mean_diff", "sd_diff", "t_pvalue",
                   "t_pvalue_holm", "wilcoxon_pvalue", "wilcoxon_pvalue_holm", "wilcoxon_note",
                   "n_needed"]
#: the columns of :func:`paired_comparison`
PAIRED_COLUMNS = ["metric", "strategy", "task_aware", "baseline", "quantity", "n",
                  "reference_mean", "baseline_mean", "mean_diff", "t_pvalue", "t_pvalue_holm",
                  "wilcoxon_pvalue", "wilcoxon_pvalue_holm", "wilcoxon_note"]
#: the key that pairs two runs, by kind of comparison (the compared column is left out)
#: task-aware (oracle) and task-agnostic runs are never pooled; they are paired with each other
#: only where one strategy is always task-aware and the other never (:func:`_across_awareness`)
PAIR_KEYS = {"strategy": ["method", "task_aware", "order", "seed"],
             "method": ["strategy", "task_aware", "order", "seed"]}
NAIVE, ROUTING, INDEPENDENT = "naive", "routing", "independent"


@dataclass(frozen=True)
class Pair:
    """``first`` against ``second``, both values of ``kind`` ("strategy" or "method"),
    within ``within`` (a detector, resp. a strategy; None: every one)."""

    kind: str
    first: str
    second: str
    within: str | None = None

    @classmethod
    def from_config(cls, pair: ComparePair) -> Pair:
        if pair.strategies is not None:
            return cls("strategy", *pair.strategies, within=pair.within)
        assert pair.detectors is not None
        return cls("method", *pair.detectors, within=pair.within)

    @property
    def label(self) -> str:
        return f"{self.first} − {self.second}"


def default_pairs(per_run: pd.DataFrame) -> list[Pair]:
    """The hybrid against each other detector, each strategy against naive, routing against
    independent (module docstring), among the names present."""
    methods = sorted(set(per_run["method"]), key=method_sort_key)
    strategies = sorted(set(per_run["strategy"]), key=strategy_sort_key)
    pairs = [Pair("method", HYBRID, m) for m in methods if HYBRID in methods and m != HYBRID]
    labels = set(strategies)
    for first, second in ((None, NAIVE), (ROUTING, INDEPENDENT)):
        for strategy in strategies:
            if strategy == second or (first is not None and base_strategy(strategy) != first):
                continue
            counterpart = _counterpart(strategy, second, labels)
            if counterpart is not None:
                pairs.append(Pair("strategy", strategy, counterpart))
    return pairs


def _counterpart(label: str, reference: str, labels: set[str]) -> str | None:
    """The reference strategy's label for ``label``: the one with the same setting suffix where
    the report has it (``routing [tasks=mvtec_3x5]`` -> ``naive [tasks=mvtec_3x5]``: runs that
    differ in a setting, such as a sweep over task splits, are compared within that setting),
    else the plain reference (so a variant of the reference itself, ``naive [seed=1]``, is held
    against plain ``naive``), else None."""
    suffix = label[len(base_strategy(label)):]
    for candidate in (reference + suffix, reference):
        if candidate in labels and candidate != label:
            return candidate
    return None


def configured_pairs(configs: Iterable[dict | None]) -> list[Pair] | None:
    """The pairs of ``report.compare`` in the runs' ``config.yaml`` (their union, in order);
    None when no run sets it. A malformed entry is an error naming it."""
    pairs: list[Pair] = []
    found = False
    for config in configs:
        entries = ((config or {}).get("report") or {}).get("compare")
        if entries is None:
            continue
        found = True
        if not isinstance(entries, list):
            raise ConfigError(f"report.compare must be a list of pairs, got {entries!r}")
        for index, entry in enumerate(entries):
            try:
                pair = Pair.from_config(ComparePair.model_validate(entry))
            except ValidationError as exc:
                why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'pair'}: "
                                f"{e['msg'].removeprefix('Value error, ')}"
                                for e in exc.errors())
                raise ConfigError(f"report.compare[{index}] = {entry!r}: {why}") from None
            if pair not in pairs:
                pairs.append(pair)
    return pairs if found else None


def compare_runs(per_run: pd.DataFrame, pairs: Sequence[Pair], min_pairs: int = 3,
                 alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """One row per (pair, within, metric, quantity) with ``min_pairs`` or more complete paired
    runs: means, mean and std of the differences, raw and Holm p of both tests, n needed."""
    per_run = per_run[per_run["quantity"].isin(QUANTITIES)]
    if "status" in per_run:
        per_run = per_run[per_run["status"] == "complete"]
    if per_run.empty:
        return pd.DataFrame(columns=COMPARE_COLUMNS)
    _check_unique_pairs(per_run)
    min_wilcoxon = wilcoxon_min_pairs(alpha)
    rows = []
    for pair in pairs:
        key = PAIR_KEYS[pair.kind]
        group_by = "method" if pair.kind == "strategy" else "strategy"
        mine = per_run[per_run[pair.kind].isin([pair.first, pair.second])]
        if pair.within is not None:
            mine = mine[mine[group_by] == pair.within]
        if mine.empty:
            continue
        across = _across_awareness(mine, pair)
        second_aware = None
        if across is not None:
            first_aware, second_aware = across
            mine = mine.assign(task_aware=first_aware)
        wide = mine.pivot_table(index=["metric", "quantity", *key], columns=pair.kind,
                                values="value", aggfunc="first", dropna=False)
        if pair.first not in wide or pair.second not in wide:
            continue
        for (metric, quantity, within, task_aware), table in wide.groupby(
                level=["metric", "quantity", group_by, "task_aware"]):
            both = table[[pair.first, pair.second]].dropna()
            if len(both) < min_pairs:
                continue
            first, second = both[pair.first].to_numpy(), both[pair.second].to_numpy()
            diff = first - second
            rows.append({"metric": metric, "quantity": quantity, "kind": pair.kind,
                         "within": within, "task_aware": bool(task_aware),
                         "second_task_aware": bool(task_aware if second_aware is None
                                                   else second_aware),
                         "first": pair.first, "second": pair.second,
                         "n": len(both), "first_mean": first.mean(),
                         "second_mean": second.mean(), "mean_diff": float(diff.mean()),
                         "sd_diff": float(diff.std(ddof=1)),
                         **_paired_pvalues(first, second, min_wilcoxon),
                         "n_needed": paired_runs_needed(diff, alpha=alpha, power=power)})
    out = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    if out.empty:
        return out
    out = out.sort_values(
        by=["metric", "quantity"], key=lambda c: c.map(
            lambda v: (METRIC_ORDER + QUANTITIES).index(v) if v in METRIC_ORDER + QUANTITIES
            else 99), kind="stable").reset_index(drop=True)
    out["t_pvalue_holm"] = holm_adjust(out["t_pvalue"].to_numpy(dtype=float))
    out["wilcoxon_pvalue_holm"] = holm_adjust(out["wilcoxon_pvalue"].to_numpy(dtype=float))
    return out


def _across_awareness(mine: pd.DataFrame, pair: Pair) -> tuple[bool, bool] | None:
    """(first's, second's) task awareness when the two strategies are each run in one mode
    only, and not the same one: routing (task-agnostic) against independent (the task-aware
    oracle) can only be paired across modes, by (detector, order, seed). None otherwise: then
    task-aware and task-agnostic runs are compared apart."""
    if pair.kind != "strategy":
        return None
    modes = [set(mine.loc[mine[pair.kind] == name, "task_aware"].astype(bool))
             for name in (pair.first, pair.second)]
    if all(len(m) == 1 for m in modes) and modes[0] != modes[1]:
        return next(iter(modes[0])), next(iter(modes[1]))
    return None


def _needed_text(n: float) -> str:
    if not np.isfinite(n):
        return "–" if np.isnan(n) else "> 100000"
    return str(int(n))


def compare_table(frame: pd.DataFrame, fpr_limit: float = DEFAULT_FPR_LIMIT,
                  excluded: Sequence[str] = (), alpha: float = ALPHA,
                  power: float = POWER) -> TextTable:
    """The comparisons of :func:`compare_runs` as a table (CSV, Markdown, LaTeX)."""
    header = ["metric", "quantity", "comparison", "within", "n", "first mean", "second mean",
              "Δ (first − second)", "p (paired t)", "p Holm (paired t)", "p (Wilcoxon)",
              "p Holm (Wilcoxon)", "n for 80% power"]
    header_latex = [latex_escape(h) for h in header[:7]] + [
        "$\\Delta$", "$p$ (paired $t$)", "$p$ Holm (paired $t$)", "$p$ (Wilcoxon)",
        "$p$ Holm (Wilcoxon)", "$n$ for 80\\% power"]
    body_md, body_tex = [], []
    for row in frame.itertuples(index=False):
        within = f"{'detector' if row.kind == 'strategy' else 'strategy'} {row.within}"
        if row.task_aware != row.second_task_aware:
            aware = row.first if row.task_aware else row.second
            within += f" ({aware} task-aware)"
        elif row.task_aware:
            within += " (task-aware)"
        common = [metric_label(row.metric, fpr_limit),
                  QUANTITY_LABELS.get(row.quantity, row.quantity),
                  f"{row.first} − {row.second}", within, str(row.n),
                  f"{row.first_mean:.3f}", f"{row.second_mean:.3f}", f"{row.mean_diff:+.3f}"]
        for markdown, body in ((True, body_md), (False, body_tex)):
            cells = (common if markdown else
                     [*(latex_escape(c) for c in common[:5]), *(f"${c}$" for c in common[5:])])
            body.append([*cells, _p_text(row.t_pvalue, markdown),
                         _p_text(row.t_pvalue_holm, markdown, alpha),
                         _wilcoxon_text(row.wilcoxon_pvalue, row.wilcoxon_note, markdown),
                         _wilcoxon_text(row.wilcoxon_pvalue_holm, row.wilcoxon_note, markdown,
                                        alpha),
                         _needed_text(row.n_needed)])
    n_t = int(np.isfinite(frame["t_pvalue"].to_numpy(dtype=float)).sum())
    n_w = int(np.isfinite(frame["wilcoxon_pvalue"].to_numpy(dtype=float)).sum())
    left_out = f" Runs not complete are left out: {', '.join(excluded)}." if excluded else ""
    return TextTable(
        name="comparison", title="Paired comparisons",
        caption=(
            "Each row compares two strategies within one detector, or two detectors within one "
            "strategy (report.compare; default: the hybrid against each detector, each strategy "
            "against naive, routing against independent), paired by task order and seed over "
            "complete runs (n pairs). Δ = mean of the paired differences first − second; for "
            "FM and intransigence a negative Δ favours the first. Two-sided paired t-test and "
            "Wilcoxon signed-rank test (scipy.stats), raw and Holm-Bonferroni adjusted p. "
            f"Holm's family is every test of one kind in this table ({n_t} t-tests, {n_w} "
            f"Wilcoxon tests). Bold: adjusted p < {alpha:g}. Wilcoxon needs n >= "
            f"{wilcoxon_min_pairs(alpha)} non-zero differences to reach p < {alpha:g}; below "
            f"that: \"{WILCOXON_TOO_FEW}\". n for {power:.0%} power: the smallest number of "
            f"paired runs at which the two-sided paired t-test at alpha {alpha:g} detects the "
            "observed Δ with the observed standard deviation of the differences (noncentral t, "
            f"df = n − 1, noncentrality √n·Δ/sd; Cohen 1988).{left_out}"),
        frame=frame, header=header, header_latex=header_latex, body_markdown=body_md,
        body_latex=body_tex)


__all__ = ["COMPARE_COLUMNS", "Pair", "compare_runs", "compare_table", "configured_pairs",
           "default_pairs"]


def paired_comparison(per_run: pd.DataFrame, reference: str = HYBRID, min_pairs: int = 3,
                      alpha: float = ALPHA) -> pd.DataFrame:
    """``reference`` against each other detector within each strategy, as :func:`compare_runs`
    computes it (the report's path: pairs matched by (strategy, task awareness, order, seed),
    never by position; duplicates an error; Holm over the whole table), in the columns of
    :data:`PAIRED_COLUMNS`."""
    methods = sorted(set(per_run["method"]), key=method_sort_key) if not per_run.empty else []
    if reference not in methods:
        return pd.DataFrame(columns=PAIRED_COLUMNS)
    pairs = [Pair("method", reference, m) for m in methods if m != reference]
    out = compare_runs(per_run, pairs, min_pairs=min_pairs, alpha=alpha)
    out = out.rename(columns={"within": "strategy", "second": "baseline",
                              "first_mean": "reference_mean", "second_mean": "baseline_mean"})
    return out.reindex(columns=PAIRED_COLUMNS).reset_index(drop=True)
