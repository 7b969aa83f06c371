"""Look-alike synthetic categories (``lookalike``/``family``): distinct but close, deterministic,
and without effect on the ordinary categories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cl_bench.cli import main
from cl_bench.data import synthesize
from cl_bench.data.synthetic import category_names, render_image
from cl_bench.errors import ConfigError

SIZE = 64


def _centroid(image: np.ndarray) -> float:
    """Spectral centroid of the grey image, in cycles per image side: the power-weighted mean
    radius of its 2-D Fourier spectrum, a texture's scale, blind to its phase (pose)."""
    grey = image.astype(float).mean(axis=2)
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    y, x = np.indices(power.shape) - SIZE // 2
    return float((np.hypot(x, y) * power).sum() / power.sum())


def _feature(name: str, n: int = 6) -> np.ndarray:
    """Mean spectral centroid (/ Nyquist) and mean colour (/ 255) of n training images."""
    images = [render_image(name, SIZE, 7, "train", i)[0] for i in range(n)]
    centroid = np.mean([_centroid(image) for image in images]) / (SIZE / 2)
    colour = np.mean([image.reshape(-1, 3).mean(0) / 255 for image in images], axis=0)
    return np.array([centroid, *colour])


def test_lookalikes_are_distinct_but_much_closer_than_other_families():
    """stripes1-3 sit near stripes (and each other) in scale and colour, at least 3 times
    closer than any other family (measured: about 4 times); their spatial frequency rises with
    the variant."""
    features = {name: _feature(name) for name in
                ("stripes", "stripes1", "stripes2", "stripes3", "checker", "weave", "wood")}
    look = ["stripes", "stripes1", "stripes2", "stripes3"]
    within = [np.linalg.norm(features[a] - features[b]) for a in look for b in look if a < b]
    between = [np.linalg.norm(features[a] - features[b]) for a in look
               for b in ("checker", "weave", "wood")]
    assert min(within) > 0  # distinct
    assert max(within) * 3 < min(between)
    centroid = [features[name][0] for name in look]
    assert centroid == sorted(centroid) and centroid[-1] > 1.1 * centroid[0]


def test_lookalike_set_is_deterministic_and_leaves_ordinary_categories_alone(tmp_path):
    params = {"n_categories": 1, "n_train": 2, "n_test": 2, "size": 32, "seed": 3}
    plain = synthesize(tmp_path / "plain", **params)
    first = synthesize(tmp_path / "a", **params, lookalike=2, family="stripes")
    second = synthesize(tmp_path / "b", **params, lookalike=2, family="stripes")
    names = sorted(p.name for p in first.iterdir() if p.is_dir())
    assert names == category_names(1, 2, "stripes") == ["stripes", "stripes1", "stripes2"]
    files = sorted(p.relative_to(first) for p in first.rglob("*.png"))
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    for path in (plain / "stripes").rglob("*.png"):  # the ordinary category is untouched
        assert path.read_bytes() == (first / "stripes" / path.relative_to(plain / "stripes")
                                     ).read_bytes()
    marker = json.loads((first / "synthetic.json").read_text())
    assert marker["lookalike"] == 2 and marker["family"] == "stripes"
    assert "lookalike" not in json.loads((plain / "synthetic.json").read_text())


def test_bad_lookalike_settings(tmp_path, capsys):
    with pytest.raises(ConfigError, match="lookalike=9"):
        synthesize(tmp_path / "x", lookalike=9)
    with pytest.raises(ConfigError, match="family='carpet'"):
        synthesize(tmp_path / "x", lookalike=2, family="carpet")
    with pytest.raises(ValueError, match="unknown synthetic category 'stripes0'"):
        render_image("stripes0", 32, 0, "train", 0)
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--lookalike", "9"]) == 2
    assert "lookalike=9" in capsys.readouterr().err


def test_cli_writes_lookalikes(tmp_path, capsys):
    out = tmp_path / "set"
    assert main(["data", "synth", "--out", str(out), "--categories", "1", "--lookalike", "2",
                 "--family", "wood", "--train", "1", "--test", "2", "--size", "32"]) == 0
    assert "3 categories (stripes, wood1, wood2)" in capsys.readouterr().out
    assert (out / "wood2" / "train" / "good" / "000.png").is_file()
