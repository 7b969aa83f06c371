"""Synthetic MVTec-like data: the embedded default that needs no download.

``synthesize`` writes the MVTec AD layout (``<category>/train/good``, ``test/<good|defect>``,
``ground_truth/<defect>/<stem>_mask.png``) for up to 15 visually distinct categories: textures
(stripes, checkerboard, carpet-like noise, weave, leather-like grain, dots, wood rings) and objects
on a background (disc, ring, square, pill, hex nut, cross, triangle, bolt). Each image varies
naturally: a random pose (shift, rotation, scale; a texture's phase), fresh texture noise,
lighting (brightness, a linear illumination gradient, a colour cast) and sensor noise, so no two
normal images are alike. Defective images carry one defect among scratch, spot, hole, colour
change and missing part, of random size (about 2 to 12 % of the side) and contrast (some
faint), so a trained detector does not separate every category perfectly. The mask of a defect
is exact: the pixels whose written value the defect changed.

Look-alike categories (``lookalike`` = N): N variants ``<family>1..<family>N`` of one
coordinate-drawn texture (:data:`LOOKALIKE_FAMILIES`), variant k drawn at ``1 + k *
LOOKALIKE_STEP`` times the family's spatial frequency, with the family's colours and defects.
Written after the ordinary categories, so a set with the family among them holds N + 1 tasks
that differ only by that small shift (as VisA's pcb1-pcb4 differ less from each other than from
the rest): the case where a router built on mean features should fail.

Determinism: each image draws from ``numpy.random.default_rng([seed, category, split, index])``
and PNGs are written by Pillow without timestamps, so a seed gives the same bytes on one
installation; a category depends only on its position in :data:`CATEGORY_NAMES`, not on how
many categories are written. Written by hand: no library generates MVTec-like anomaly data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt

from cl_bench.data.synthetic_scenes import (
    CATEGORIES,
    CATEGORY_NAMES,
    Array,
    CategorySpec,
    Rendered,
    Scene,
)
from cl_bench.errors import ConfigError, DataError

#: bump when the generator's output changes, so cached sets are regenerated
GENERATOR_VERSION = 1
#: marker file written at the root of a synthetic set (its parameters)
MARKER = "synthetic.json"
CACHE_ENV = "CL_BENCH_CACHE"
DEFECT_TYPES = ("scratch", "spot", "hole", "colour", "missing")
MIN_SIZE, MAX_SIZE = 16, 1024
SPLIT_IDS = {"train": 0, "test": 1}
#: texture families whose pattern is drawn from the image coordinates (noise textures are not:
#: zooming them changes nothing but the noise), so a zoom shifts their spatial frequency
LOOKALIKE_FAMILIES = ("stripes", "checker", "weave", "dots", "wood")
#: relative zoom between look-alike variants: variant k draws its family at (1 + k * step)
LOOKALIKE_STEP = 0.06
MAX_LOOKALIKE = 8


# ----------------------------------------------------------------------------- pose, lighting
def _scene(spec: CategorySpec, size: int, rng: np.random.Generator) -> Scene:
    """Pixel-centre coordinates in [-1, 1] moved by a random pose (objects move less)."""
    shift, turn = (0.05, 12.0) if spec.is_object else (0.3, 4.0)
    dx, dy = rng.uniform(-shift, shift, size=2)
    theta = np.deg2rad(rng.uniform(-turn, turn))
    scale = rng.uniform(0.96, 1.04)
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(axis, axis, indexing="ij")
    u, v = u - dx, v - dy
    cos, sin = np.cos(theta), np.sin(theta)
    return Scene((cos * u + sin * v) / scale, (-sin * u + cos * v) / scale, 2.0 / size, size, rng)


@dataclass(frozen=True)
class Lighting:
    gain: Array  # (H, W, 3)
    noise: Array  # (H, W, 3)

    def apply(self, image: Array) -> Array:
        return image * self.gain + self.noise


def _lighting(size: int, rng: np.random.Generator) -> Lighting:
    axis = (np.arange(size) + 0.5) / size * 2 - 1
    v, u = np.meshgrid(axis, axis, indexing="ij")
    brightness = rng.uniform(0.9, 1.08)
    gx, gy = rng.uniform(-0.06, 0.06, size=2)
    cast = rng.uniform(0.97, 1.03, size=3)
    gain = (brightness * (1 + gx * u + gy * v))[..., None] * cast[None, None, :]
    noise = rng.standard_normal((size, size, 3), dtype=np.float32) * rng.uniform(0.006, 0.016)
    return Lighting(gain, noise)


# ----------------------------------------------------------------------------- defects
def _grid(size: int) -> tuple[Array, Array]:
    axis = np.arange(size) + 0.5
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    return xx, yy


def _pick_centre(rendered: Rendered, size: int, rng: np.random.Generator, edge: bool) -> Array:
    """A defect centre (x, y) in pixels: on the object (its rim for ``edge``), else anywhere."""
    if rendered.foreground is None:
        return rng.uniform(0.15 * size, 0.85 * size, size=2)
    cover = rendered.foreground
    candidates = (distance_transform_edt(cover > 0.5) < 0.06 * size) if edge else (cover > 0.99)
    ys, xs = np.nonzero(candidates if candidates.any() else cover > 0.5)
    pick = rng.integers(len(xs))
    return np.array([xs[pick] + 0.5, ys[pick] + 0.5])


def _blob(size: int, centre: Array, radius: float, rng: np.random.Generator) -> Array:
    """Coverage (H, W) of an irregular blob: an ellipse with a wobbly rim."""
    xx, yy = _grid(size)
    angle = rng.uniform(0, np.pi)
    ratio = rng.uniform(0.5, 1.0)
    du, dv = xx - centre[0], yy - centre[1]
    a = (du * np.cos(angle) + dv * np.sin(angle)) / radius
    b = (-du * np.sin(angle) + dv * np.cos(angle)) / (radius * ratio)
    theta = np.arctan2(b, a)
    wobble = 1 + sum(
        rng.uniform(0, 0.15) * np.sin(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
    )
    distance = (np.hypot(a, b) - wobble) * radius * ratio
    return np.clip(0.5 - distance, 0.0, 1.0)


def _segment(size: int, centre: Array, length: float, width: float, rng: np.random.Generator):
    """Coverage (H, W) of a slightly bent line (a scratch) through ``centre``."""
    xx, yy = _grid(size)
    angle = rng.uniform(0, np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    along = (xx - centre[0]) * direction[0] + (yy - centre[1]) * direction[1]
    across = -(xx - centre[0]) * direction[1] + (yy - centre[1]) * direction[0]
    across = across - rng.uniform(-0.15, 0.15) * along**2 / max(length, 1.0)  # bend
    beyond = np.maximum(np.abs(along) - length / 2, 0)
    distance = np.hypot(beyond, across) - width / 2
    return np.clip(0.5 - distance, 0.0, 1.0)


def _apply_defect(defect: str, rendered: Rendered, size: int, rng: np.random.Generator) -> Array:
    """The image of ``rendered`` with one ``defect``; its size and contrast are drawn at random."""
    image = rendered.image
    radius = size * np.exp(rng.uniform(np.log(0.02), np.log(0.10)))
    contrast = rng.uniform(0.06, 0.45)
    on_object = rendered.foreground if rendered.foreground is not None else 1.0
    centre = _pick_centre(rendered, size, rng, edge=defect == "missing")
    if defect == "scratch":
        width = rng.uniform(0.8, 2.5) * max(1.0, size / 256)
        cover = _segment(size, centre, radius * rng.uniform(3, 6), width, rng) * on_object
        sign = rng.choice([-1.0, 1.0])
        return image + sign * contrast * cover[..., None]
    if defect == "spot":
        cover = _blob(size, centre, radius, rng) * on_object
        stain = rng.uniform(0, 1, size=3)
        alpha = min(0.9, 2 * contrast)
        return image + (stain - image) * (alpha * cover)[..., None]
    if defect == "hole":
        cover = _blob(size, centre, radius * 0.8, rng) * on_object
        xx, yy = _grid(size)
        rim = np.clip(np.hypot(xx - centre[0], yy - centre[1]) / max(radius, 1.0), 0, 1)
        dark = (0.04 + 0.1 * rim)[..., None] * np.ones(3)
        return image + (dark - image) * cover[..., None]
    if defect == "colour":
        cover = _blob(size, centre, radius * 1.5, rng) * on_object
        tint = rng.uniform(-1, 1, size=3)
        tint = tint - tint.mean()
        tint = tint / (np.abs(tint).max() + 1e-8)
        return image * (1 + contrast * tint * cover[..., None])
    if defect == "missing":
        cover = _blob(size, centre, radius * 1.6, rng)
        if rendered.background is not None:
            cover = cover * on_object
            return image + (rendered.background - image) * cover[..., None]
        inside = cover > 0.5
        flat = image[inside].mean(axis=0) if inside.any() else image.mean(axis=(0, 1))
        return image + (flat - image) * cover[..., None]
    raise ValueError(f"unknown defect type {defect!r}; choose one of {', '.join(DEFECT_TYPES)}")


def _quantise(image: Array) -> Array:
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)


def lookalike_names(family: str, n: int) -> list[str]:
    """The names of ``n`` look-alike variants of ``family``: ``<family>1`` .. ``<family>n``."""
    return [f"{family}{k}" for k in range(1, n + 1)]


def category_names(n_categories: int, lookalike: int = 0, family: str = "stripes") -> list[str]:
    """The categories a set holds: the first ``n_categories`` of :data:`CATEGORY_NAMES`, then
    ``lookalike`` variants of ``family``."""
    return [*CATEGORY_NAMES[:n_categories], *lookalike_names(family, lookalike)]


def _resolve(category: str) -> tuple[CategorySpec, int, int]:
    """``(spec, family index, variant)`` of a category name; variant 0: the category itself,
    k >= 1: its k-th look-alike variant (``<family><k>``)."""
    if category in CATEGORY_NAMES:
        return CATEGORIES[CATEGORY_NAMES.index(category)], CATEGORY_NAMES.index(category), 0
    family = category.rstrip("0123456789")
    digits = category[len(family):]
    if family in LOOKALIKE_FAMILIES and digits and not digits.startswith("0"):
        index = CATEGORY_NAMES.index(family)
        return replace(CATEGORIES[index], name=category), index, int(digits)
    raise ValueError(f"unknown synthetic category {category!r}; use one of "
                     f"{', '.join(CATEGORY_NAMES)} or a look-alike <family><k> with family one "
                     f"of {', '.join(LOOKALIKE_FAMILIES)}")


def _zoomed(scene: Scene, factor: float) -> Scene:
    """The scene's coordinates scaled by ``factor``: a coordinate-drawn pattern's spatial
    frequency times ``factor`` (pixel size in the same units)."""
    return Scene(scene.u * factor, scene.v * factor, scene.px * factor, scene.size, scene.rng)


def render_image(
    category: str, size: int, seed: int, split: str, index: int, defect: str | None = None
) -> tuple[Array, Array | None]:
    """One synthetic image as ``uint8`` (H, W, 3) and, for a ``defect``, its mask (H, W) bool.

    The mask holds exactly the pixels whose value the defect changed (the sensor noise is the
    same with and without it); defects that change fewer than 4 pixels are redrawn. A
    look-alike variant ``<family><k>`` draws from its own stream
    ``default_rng([seed, family, split, index, k])`` and renders the family's pattern at
    ``1 + k * LOOKALIKE_STEP`` times its spatial frequency.
    """
    spec, family, variant = _resolve(category)
    key = [seed, family, SPLIT_IDS[split], index] + ([variant] if variant else [])
    rng = np.random.default_rng(key)
    scene = _scene(spec, size, rng)
    if variant:
        scene = _zoomed(scene, 1 + variant * LOOKALIKE_STEP)
    rendered = spec.render(scene)
    lighting = _lighting(size, rng)
    normal = _quantise(lighting.apply(rendered.image))
    if defect is None:
        return normal, None
    for _ in range(20):
        defective = lighting.apply(np.clip(_apply_defect(defect, rendered, size, rng), 0, 1))
        image = _quantise(defective)
        mask = (image != normal).any(axis=2)
        if mask.sum() >= 4:
            return image, mask
    raise RuntimeError(f"could not place a visible {defect} on {category} image {index}")


# ----------------------------------------------------------------------------- writing
def _check_params(n_categories: int, n_train: int, n_test: int, size: int, seed: int,
                  lookalike: int = 0, family: str = "stripes") -> None:
    if family not in LOOKALIKE_FAMILIES:
        raise ConfigError(f"synthetic data: family={family!r} is not a look-alike family; use "
                          f"one of {', '.join(LOOKALIKE_FAMILIES)}")
    checks = (
        ("n_categories", n_categories, 1, len(CATEGORIES)),
        ("n_train", n_train, 1, None),
        ("n_test", n_test, 2, None),
        ("size", size, MIN_SIZE, MAX_SIZE),
        ("seed", seed, 0, None),
        ("lookalike", lookalike, 0, MAX_LOOKALIKE),
    )
    for name, value, low, high in checks:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"synthetic data: {name}={value!r} must be an integer")
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ConfigError(f"synthetic data: {name}={value} must be {bound}")


def _write_png(array: Array, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=1)  # fast, still lossless


def _write_category(
    spec: CategorySpec, root: Path, n_train: int, n_test: int, size: int, seed: int
) -> None:
    folder = root / spec.name
    good = folder / "train" / "good"
    good.mkdir(parents=True)
    for i in range(n_train):
        _write_png(render_image(spec.name, size, seed, "train", i)[0], good / f"{i:03d}.png")
    n_good = n_test // 2
    (folder / "test" / "good").mkdir(parents=True)
    for i in range(n_good):
        image, _ = render_image(spec.name, size, seed, "test", i)
        _write_png(image, folder / "test" / "good" / f"{i:03d}.png")
    counters: dict[str, int] = {}
    for j in range(n_test - n_good):
        defect = spec.defects[j % len(spec.defects)]
        number = counters.get(defect, 0)
        counters[defect] = number + 1
        image, mask = render_image(spec.name, size, seed, "test", n_good + j, defect)
        assert mask is not None
        (folder / "test" / defect).mkdir(parents=True, exist_ok=True)
        (folder / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
        _write_png(image, folder / "test" / defect / f"{number:03d}.png")
        _write_png(
            mask.astype(np.uint8) * 255, folder / "ground_truth" / defect / f"{number:03d}_mask.png"
        )


def _params(n_categories: int, n_train: int, n_test: int, size: int, seed: int,
            lookalike: int = 0, family: str = "stripes") -> dict:
    params = {
        "generator_version": GENERATOR_VERSION,
        "n_categories": int(n_categories),
        "n_train": int(n_train),
        "n_test": int(n_test),
        "size": int(size),
        "seed": int(seed),
    }
    if lookalike:  # absent without look-alikes: earlier sets keep their cache folder
        params.update(lookalike=int(lookalike), family=family)
    return params


def synthesize(
    out_dir: str | Path,
    n_categories: int = 5,
    n_train: int = 20,
    n_test: int = 20,
    size: int = 128,
    seed: int = 0,
    lookalike: int = 0,
    family: str = "stripes",
) -> Path:
    """Write a synthetic MVTec-layout set to ``out_dir`` and return it.

    ``n_test`` images per category: ``n_test // 2`` good, the rest defective, spread over the
    category's defect types. ``lookalike`` = N > 0 adds N look-alike categories
    ``<family>1..<family>N`` after the first ``n_categories`` (:func:`render_image`): the same
    texture at slightly higher spatial frequencies, tasks a mean-feature router may confuse.
    The folder is written next to ``out_dir`` and moved into place when
    complete. An existing ``out_dir`` must be empty or an earlier synthetic set (it is replaced).
    """
    _check_params(n_categories, n_train, n_test, size, seed, lookalike, family)
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise DataError(
            f"{out} exists and is not an empty folder or an earlier synthetic set; choose "
            f"another --out folder or remove it"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        for name in category_names(n_categories, lookalike, family):
            _write_category(_resolve(name)[0], staging, n_train, n_test, size, seed)
        params = _params(n_categories, n_train, n_test, size, seed, lookalike, family)
        (staging / MARKER).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def default_cache_dir() -> Path:
    """``$CL_BENCH_CACHE/synthetic`` when set, else ``~/.cache/cl-bench/synthetic``."""
    base = os.environ.get(CACHE_ENV)
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "cl-bench") / "synthetic"


def ensure_synthetic(cache_dir: str | Path | None = None, **params: int | str) -> Path:
    """The root of the synthetic set for ``params`` (those of :func:`synthesize`), made once.

    Sets live in ``<cache_dir>/<hash of the parameters>/``; a missing one is generated into a
    temporary folder and renamed into place, so concurrent callers never see a partial set.
    """
    defaults = {"n_categories": 5, "n_train": 20, "n_test": 20, "size": 128, "seed": 0,
                "lookalike": 0, "family": "stripes"}
    unknown = set(params) - set(defaults)
    if unknown:
        raise ConfigError(
            f"ensure_synthetic: unknown parameter(s) {', '.join(sorted(unknown))}; accepted: "
            f"{', '.join(defaults)}"
        )
    full = {**defaults, **params}
    _check_params(**full)
    key = _params(**full)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = base / digest
    if (target / MARKER).is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{digest}.tmp-", dir=base))
    try:
        synthesize(staging / "set", **full)
        try:
            os.rename(staging / "set", target)
        except OSError as exc:
            if not (target / MARKER).is_file():  # not a concurrent winner: a real failure
                raise DataError(
                    f"cannot create the synthetic set {target} ({exc}); if that folder exists "
                    f"without {MARKER}, it is left from something else: remove it"
                ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
