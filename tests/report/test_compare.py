"""``report.compare``: any pair of strategies or detectors, Holm over the whole table, and the
number of paired runs needed for 80 % power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cl_bench.errors import ConfigError
from cl_bench.report.compare import (
    Pair,
    compare_runs,
    compare_table,
    configured_pairs,
    default_pairs,
)
from cl_bench.report.power import paired_runs_needed, paired_t_power


def _differences(effect: float, n: int = 8) -> np.ndarray:
    """n differences with mean / sd (ddof 1) = ``effect`` exactly."""
    z = np.linspace(-1.0, 1.0, n)
    z = (z - z.mean()) / z.std(ddof=1)
    return effect + z


@pytest.mark.parametrize(("effect", "expected"), [(0.5, 34), (0.8, 15), (1.0, 10)])
def test_paired_runs_needed_matches_the_published_tables(effect: float, expected: int) -> None:
    """Two-sided paired (one-sample) t-test, alpha 0.05, power 0.8: n = 34, 15 and 10 for
    d = 0.5, 0.8 and 1.0 (Cohen 1988, Table 2.4.1; G*Power gives the same)."""
    assert paired_runs_needed(_differences(effect)) == expected
    assert paired_t_power(expected, effect) >= 0.8 > paired_t_power(expected - 1, effect)


def test_paired_runs_needed_edge_cases() -> None:
    assert np.isnan(paired_runs_needed(np.array([0.1])))
    assert np.isnan(paired_runs_needed(np.array([0.1, -0.1])))  # zero mean: nothing to detect
    assert paired_runs_needed(np.array([0.1, 0.1, 0.1])) == 2  # no spread
    assert paired_runs_needed(_differences(1e-4)) == float("inf")


def _per_run(values: dict[tuple[str, str, int], float]) -> pd.DataFrame:
    """Per-run ACC rows {(method, strategy, seed): value}, shuffled."""
    rows = [{"run_id": f"{m}-{s}-{seed}", "method": m, "strategy": s, "task_aware": False,
             "seed": seed, "order": "alphabetical", "metric": "image_auroc", "quantity": "acc",
             "value": v, "status": "complete", "run_dir": f"/r/{m}-{s}-{seed}"}
            for (m, s, seed), v in values.items()]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


NAIVE = {0: 0.70, 1: 0.74, 2: 0.69, 3: 0.80}
REPLAY_GAIN = {0: 0.05, 1: 0.02, 2: 0.06, 3: 0.03}


def _values() -> dict[tuple[str, str, int], float]:
    values = {}
    for seed in NAIVE:
        values[("stpm", "naive", seed)] = NAIVE[seed]
        values[("stpm", "replay", seed)] = NAIVE[seed] + REPLAY_GAIN[seed]
        values[("rd4ad", "naive", seed)] = NAIVE[seed] + 0.1
        values[("rd4ad", "replay", seed)] = NAIVE[seed] + 0.1 + (0.02, 0.09, 0.01, 0.04)[seed]
    return values


def test_replay_against_naive_within_each_detector() -> None:
    table = compare_runs(_per_run(_values()), [Pair("strategy", "replay", "naive")])
    assert list(table["within"]) == ["stpm", "rd4ad"] or set(table["within"]) == {"stpm",
                                                                                    "rd4ad"}
    row = table[table["within"] == "stpm"].iloc[0]
    naive = np.array([NAIVE[s] for s in sorted(NAIVE)])
    replay = naive + np.array([REPLAY_GAIN[s] for s in sorted(NAIVE)])
    assert row["n"] == 4 and row["mean_diff"] == pytest.approx(np.mean(replay - naive))
    assert row["t_pvalue"] == pytest.approx(stats.ttest_rel(replay, naive).pvalue, rel=1e-9)
    assert row["n_needed"] == paired_runs_needed(replay - naive)
    # Holm's family: both rows of the table, by hand (m = 2): the smaller p doubled, the larger
    # one at least that (running maximum)
    low, high = sorted(table["t_pvalue"])
    expected = {low: min(1.0, 2 * low), high: max(min(1.0, 2 * low), min(1.0, high))}
    for raw, adjusted in zip(table["t_pvalue"], table["t_pvalue_holm"], strict=True):
        assert adjusted == pytest.approx(expected[raw], rel=1e-12)


def test_detectors_within_a_strategy_and_the_within_filter() -> None:
    table = compare_runs(_per_run(_values()), [Pair("method", "rd4ad", "stpm", within="naive")])
    (row,) = table.itertuples(index=False)
    assert (row.first, row.second, row.within) == ("rd4ad", "stpm", "naive")
    assert row.mean_diff == pytest.approx(0.1) and row.n_needed == 2  # no spread


def test_default_pairs() -> None:
    per_run = pd.DataFrame({"method": ["stpm", "hybrid", "rd4ad"] * 2,
                            "strategy": ["naive", "replay", "routing", "independent", "ewc",
                                         "naive"]})
    pairs = default_pairs(per_run)
    assert Pair("method", "hybrid", "stpm") in pairs and Pair("method", "hybrid", "rd4ad") in pairs
    assert {p.first for p in pairs if p.kind == "strategy" and p.second == "naive"} == {
        "replay", "routing", "independent", "ewc"}
    assert Pair("strategy", "routing", "independent") in pairs


def test_default_pairs_compare_strategies_within_their_setting() -> None:
    """Runs that differ in a setting (a sweep over task splits) carry it in the strategy label;
    each strategy is held against naive of the same setting, never of another, and the order
    is unchanged: every pair against naive, then routing against independent."""
    labels = [f"{s} [tasks={t}]" for t in ("mvtec_3x5", "mvtec_14_1")
              for s in ("naive", "replay", "routing", "independent")]
    per_run = pd.DataFrame({"method": ["stpm"] * len(labels), "strategy": labels})
    pairs = [(p.first, p.second) for p in default_pairs(per_run) if p.kind == "strategy"]
    for t in ("mvtec_3x5", "mvtec_14_1"):
        for s in ("replay", "routing", "independent"):
            assert (f"{s} [tasks={t}]", f"naive [tasks={t}]") in pairs
        assert (f"routing [tasks={t}]", f"independent [tasks={t}]") in pairs
    assert len(pairs) == 8  # no pair across settings, none of naive with itself
    assert all(second.startswith("independent") for _, second in pairs[-2:])
    # a variant of naive itself is still held against plain naive
    per_run = pd.DataFrame({"method": ["stpm"] * 2, "strategy": ["naive", "naive [seed=1]"]})
    assert [(p.first, p.second) for p in default_pairs(per_run)] == [("naive [seed=1]", "naive")]


def test_configured_pairs_from_config_yaml() -> None:
    configs = [{"report": {"compare": [{"strategies": ["replay", "naive"]},
                                       {"detectors": ["stpm", "rd4ad"], "within": "ewc"}]}},
               {"report": {"compare": [{"strategies": ["replay", "naive"]}]}}, {}]
    assert configured_pairs(configs) == [Pair("strategy", "replay", "naive"),
                                         Pair("method", "stpm", "rd4ad", within="ewc")]
    assert configured_pairs([{}, None]) is None
    with pytest.raises(ConfigError, match=r"report.compare\[0\].*either strategies"):
        configured_pairs([{"report": {"compare": [{"within": "ewc"}]}}])


def test_compare_table_shows_raw_and_holm_p_and_n_needed() -> None:
    table = compare_table(compare_runs(_per_run(_values()), [Pair("strategy", "replay",
                                                                   "naive")]))
    assert table.header[-1] == "n for 80% power" and "p Holm (paired t)" in table.header
    assert "Holm's family is every test of one kind in this table (2 t-tests" in table.caption
    cells = table.body_markdown[0]
    assert cells[2] == "replay − naive" and cells[-1].isdigit()


def test_pairs_follow_the_run_keys_not_the_row_order() -> None:
    """Shuffling the per-run rows changes nothing: runs are paired by (method, order, seed)."""
    per_run = _per_run(_values())
    pairs = [Pair("strategy", "replay", "naive"), Pair("method", "rd4ad", "stpm")]
    reference = compare_runs(per_run, pairs)
    for state in (1, 2, 3):
        shuffled = per_run.sample(frac=1.0, random_state=state).reset_index(drop=True)
        pd.testing.assert_frame_equal(compare_runs(shuffled, pairs), reference)


def test_task_aware_runs_are_compared_apart_from_task_agnostic_ones() -> None:
    """A task-aware (oracle) evaluation of the same strategies is its own comparison: never
    pooled with the task-agnostic runs, and never dropped as a duplicate."""
    plain = _per_run(_values())
    aware = plain.assign(task_aware=True, run_id=plain["run_id"] + "-aware",
                         run_dir=plain["run_dir"] + "-aware",
                         value=lambda f: f["value"] + 0.01 * (f["strategy"] == "replay"))
    table = compare_runs(pd.concat([plain, aware], ignore_index=True),
                         [Pair("strategy", "replay", "naive", within="stpm")])
    assert sorted(table["task_aware"]) == [False, True]
    assert list(table["n"]) == [4, 4]
    by_mode = table.set_index("task_aware")["mean_diff"]
    assert by_mode[True] == pytest.approx(by_mode[False] + 0.01)


def test_routing_is_paired_with_the_task_aware_oracle_by_seed() -> None:
    """independent is always task-aware, routing never: the default pair routing − independent
    must pair their runs by (detector, order, seed) across the two modes, not come out empty."""
    values = {("rd4ad", "routing", seed): v for seed, v in NAIVE.items()}
    oracle = {("rd4ad", "independent", seed): v + (0.01, -0.02, 0.03, 0.0)[seed]
              for seed, v in NAIVE.items()}
    per_run = _per_run({**values, **oracle})
    per_run.loc[per_run["strategy"] == "independent", "task_aware"] = True
    pair = Pair("strategy", "routing", "independent")
    assert pair in default_pairs(per_run)
    (row,) = compare_runs(per_run, [pair]).itertuples(index=False)
    routing = np.array([NAIVE[s] for s in sorted(NAIVE)])
    independent = routing + np.array([0.01, -0.02, 0.03, 0.0])
    assert row.n == 4 and (row.task_aware, row.second_task_aware) == (False, True)
    assert row.mean_diff == pytest.approx(np.mean(routing - independent))
    assert row.t_pvalue == pytest.approx(stats.ttest_rel(routing, independent).pvalue, rel=1e-9)
    text = compare_table(compare_runs(per_run, [pair])).to_markdown()
    assert "detector rd4ad (independent task-aware)" in text
