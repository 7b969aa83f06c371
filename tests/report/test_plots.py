"""Figures: panels (axes) and lines counted on the returned matplotlib Figures, no pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from report_fabricate import make_experiment, write_run

from cl_bench.report import load_runs, plots
from cl_bench.report.build import compute, load_map_sets, task_order
from cl_bench.report.matrices import aggregate_matrices, build_matrices

METRIC = "image_auroc"


@pytest.fixture(scope="module")
def data(experiment_dir: Path):
    return compute([experiment_dir], [METRIC])


@pytest.fixture(scope="module")
def colors():
    return plots.method_colors(["stpm", "hybrid"])


def _panels(fig: Figure):
    """Axes that draw data (the colour bar axes has no title)."""
    return [ax for ax in fig.axes if ax.get_title()]


def test_method_colours_are_fixed_and_okabe_ito() -> None:
    a = plots.method_colors(["hybrid", "stpm", "rd4ad", "patchcore"])
    b = plots.method_colors(["patchcore", "hybrid"])
    assert a["hybrid"] == b["hybrid"] == plots.OKABE_ITO["vermillion"]
    assert a["patchcore"] == b["patchcore"]
    assert set(a.values()) <= set(plots.OKABE_ITO.values()) and len(set(a.values())) == 4


def test_patchcore_has_a_fixed_colour() -> None:
    from strategies.detectors import get_detector

    assert get_detector("patchcore").color == plots.OKABE_ITO["orange"]
    for methods in (["patchcore"], ["patchcore", "zzz_unregistered"], ["stpm", "patchcore"]):
        assert plots.method_colors(methods)["patchcore"] == plots.OKABE_ITO["orange"]


@pytest.fixture
def user_detectors():
    """Two detectors registered as a user's package would: one with its own colour and label,
    one without either."""
    from strategies.detectors import DetectorSpec, register_detector
    from strategies.detectors import registry as detector_registry
    from strategies.detectors.stpm import STPM

    register_detector(DetectorSpec("toy_coloured", STPM, label="Toy detector", color="#123456",
                                   source="tests"))
    register_detector(DetectorSpec("toy_plain", STPM, source="tests"))
    yield
    for name in ("toy_coloured", "toy_plain"):
        detector_registry._REGISTRY.pop(name, None)


def test_a_registered_detector_brings_its_colour_label_and_place(user_detectors) -> None:
    from cl_bench.report.labels import config_label, method_sort_key

    colors = plots.method_colors(["hybrid", "toy_coloured", "toy_plain", "zzz_unregistered"])
    assert colors["toy_coloured"] == "#123456"
    assert colors["hybrid"] == plots.OKABE_ITO["vermillion"]
    # no colour of its own: the first Okabe-Ito colour no registered detector declares, the same
    # whatever else the figure shows; a detector not registered here takes the next one
    assert colors["toy_plain"] == plots.OKABE_ITO["sky_blue"]
    assert plots.method_colors(["toy_plain"])["toy_plain"] == plots.OKABE_ITO["sky_blue"]
    assert colors["zzz_unregistered"] == plots.OKABE_ITO["reddish_purple"]
    assert config_label("toy_coloured", "naive") == "Toy detector / naive"
    assert config_label("toy_plain", "naive") == "toy_plain / naive"
    assert sorted(["zzz_unregistered", "toy_plain", "toy_coloured", "patchcore", "stpm"],
                  key=method_sort_key) == ["stpm", "patchcore", "toy_coloured", "toy_plain",
                                           "zzz_unregistered"]


def test_forgetting_curves_one_panel_per_method_one_line_per_task(data, colors) -> None:
    aggs = [a for a in aggregate_matrices(data.matrices) if a.metric == METRIC]
    fig = plots.plot_forgetting_curves(aggs, colors)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["stpm / naive", "hybrid / naive"]
    for ax in panels:
        assert len(ax.get_lines()) == 3  # one per task
        assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 3  # std bands
        assert ax.get_xlabel() and ax.get_ylabel() == "Image AUROC"
        # the bottle line: untrained, then after each of the 3 tasks
        assert list(ax.get_lines()[0].get_xdata()) == [-1, 0, 1, 2]
    assert panels[1].title.get_color() == colors["hybrid"]


def test_average_curves_two_panels_one_line_per_method(data, colors) -> None:
    fig = plots.plot_average_curves(data.curves, METRIC, colors)
    assert len(fig.axes) == 2  # seen-task average, pooled
    for ax in fig.axes:
        lines = ax.get_lines()
        assert len(lines) == 2 and {line.get_color() for line in lines} == {
            colors["stpm"], colors["hybrid"]}
        assert ax.get_xlabel() == "number of tasks trained"
    hybrid = next(line for line in fig.axes[0].get_lines()
                  if line.get_color() == colors["hybrid"])
    # mean over seeds (+0.01 * mean seed 1) of ACC_i = mean_{j<=i} R[i, j]
    assert list(hybrid.get_ydata()) == pytest.approx([0.91, (0.81 + 0.93) / 2, 0.86])
    assert list(hybrid.get_xdata()) == [1, 2, 3]


def test_heatmaps_one_panel_per_method_values_written(data, colors) -> None:
    aggs = [a for a in aggregate_matrices(data.matrices) if a.metric == METRIC]
    fig = plots.plot_heatmaps(aggs, colors)
    panels = _panels(fig)
    assert len(panels) == 2 and len(fig.axes) == 3  # + the colour bar
    texts = [t.get_text() for t in panels[1].texts]
    assert len(texts) == 9 and "0.96" in texts  # hybrid R[2, 2] mean over seeds


def test_final_bars_one_group_per_task_one_bar_per_method(data, colors) -> None:
    fig = plots.plot_final_bars(data.final, METRIC, task_order(data), colors)
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(len(b) == 3 for b in bars)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bottle", "cable", "metal_nut"]
    assert ax.get_ylabel() == "final Image AUROC"


def test_map_grid_rows_per_image_columns_per_method(data, colors) -> None:
    map_sets = load_map_sets(data.runs)
    assert [(m.method, m.seed) for m in map_sets] == [("stpm", 0), ("hybrid", 0)]
    fig = plots.plot_map_grid(map_sets, colors)
    assert len(fig.axes) == (3 * 2) * (2 + 2)  # 2 images per task x (image, GT, 2 methods)
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "ground truth", "stpm / naive",
                                                      "hybrid / naive"]


def test_joint_and_running_runs_still_plot(tmp_path: Path, colors) -> None:
    exp = make_experiment(tmp_path, seeds=(0,), maps=False)
    write_run(exp, "joint", "hybrid", 0, strategy="joint")
    write_run(exp, "running", "stpm", 1, strategy="replay", steps=[0], status="running")
    # the report leaves running runs out; the plots still draw a partial R (built directly)
    matrices = build_matrices(load_runs(exp), [METRIC])
    aggs = [a for a in aggregate_matrices(matrices) if a.metric == METRIC]
    fig = plots.plot_forgetting_curves(aggs, colors)
    titles = [ax.get_title() for ax in _panels(fig)]
    assert titles == ["stpm / naive", "hybrid / naive", "stpm / replay", "hybrid / joint"]
    def evaluated_steps(ax):
        return [list(np.asarray(line.get_xdata())[np.isfinite(line.get_ydata())])
                for line in ax.get_lines()]

    # joint: untrained and final only; running: untrained and step 0 only
    assert evaluated_steps(_panels(fig)[3]) == [[-1, 2]] * 3
    assert evaluated_steps(_panels(fig)[2]) == [[-1, 0]] * 3


def test_save_figure_lays_out_once_and_writes_the_same_png(data, colors, tmp_path: Path,
                                                           monkeypatch) -> None:
    """One constrained-layout pass for both files, and the PNG is the one ``savefig`` writes
    with the layout engine left on (same bytes)."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    group = aggregate_matrices(data.matrices)
    plain = tmp_path / "plain.png"
    plots.plot_heatmaps(group, colors).savefig(plain, dpi=plots.FIGURE_DPI)
    calls = []
    execute = ConstrainedLayoutEngine.execute
    monkeypatch.setattr(ConstrainedLayoutEngine, "execute",
                        lambda self, fig: calls.append(fig) or execute(self, fig))
    paths = plots.save_figure(plots.plot_heatmaps(group, colors), tmp_path / "out", "heat")
    assert [p.name for p in paths] == ["heat.png", "heat.pdf"]
    assert len(calls) == 1
    assert paths[0].read_bytes() == plain.read_bytes()
    assert paths[1].read_bytes().startswith(b"%PDF")
