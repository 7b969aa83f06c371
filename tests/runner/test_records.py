"""records.csv: exact float round trip, and dropping rows cut by a kill."""

from __future__ import annotations

import numpy as np

from cl_bench.records import COLUMN_TYPES, COLUMNS, RUN_KEY, Record, RecordWriter, RunKey


def _record(step: int, value: float) -> Record:
    return Record(run_id="r", method="stpm", strategy="naive", task_aware=False, seed=0,
                  order="alphabetical", step=step, train_task="a", eval_task="a", eval_index=0,
                  metric="image_auroc", value=value)


def test_the_run_key_is_the_first_columns_and_casts_to_their_types() -> None:
    assert tuple(COLUMNS[:len(RUN_KEY)]) == RUN_KEY
    assert _record(0, 0.5).key() == {"run_id": "r", "method": "stpm", "strategy": "naive",
                                     "task_aware": False, "seed": 0, "order": "alphabetical"}
    key = RunKey.of(["r", "stpm", "naive", np.bool_(True), np.int64(3), "alphabetical"])
    assert key == RunKey("r", "stpm", "naive", True, 3, "alphabetical")
    assert all(type(v) is COLUMN_TYPES[name] for name, v in key.key().items())


def test_floats_round_trip_exactly(tmp_path) -> None:
    writer = RecordWriter(tmp_path / "records.csv")
    values = [0.1 + 0.2, 1 / 3, 0.7071067811865476, float("nan")]
    writer.append(_record(i, v) for i, v in enumerate(values))
    rows = writer.read()
    assert list(rows[0]) == COLUMNS
    back = [float(r["value"]) for r in rows]
    assert back[:3] == values[:3]
    assert back[3] != back[3]  # NaN stays NaN


def test_rewrite_drops_cut_row_and_unwanted_steps(tmp_path) -> None:
    path = tmp_path / "records.csv"
    writer = RecordWriter(path)
    writer.append([_record(0, 0.5), _record(1, 0.6), _record(2, 0.7)])
    with path.open("a") as fh:
        fh.write("r,stpm,naive,False,0,alph")  # a row cut by SIGKILL
    dropped = writer.rewrite(lambda row: int(row["step"]) <= 1)
    assert dropped == 2
    assert [int(r["step"]) for r in RecordWriter(path).read()] == [0, 1]
