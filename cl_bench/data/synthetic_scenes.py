"""The synthetic categories: textures and objects drawn from pose-transformed coordinates.

Each renderer maps the coordinates of one image (u, v in about [-1, 1], already moved by a
random pose) to a defect-free RGB image in [0, 1]; objects also return their background and
their antialiased coverage, which the defects of :mod:`.synthetic` use (a missing part shows the
background). Shapes are signed-distance functions, so edges are antialiased at any size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

Array = np.ndarray


@dataclass(frozen=True)
class Scene:
    """Pose-transformed coordinates of one image: u, v in about [-1, 1]; ``px`` = one pixel."""

    u: Array
    v: Array
    px: float
    size: int
    rng: np.random.Generator


@dataclass(frozen=True)
class Rendered:
    """A defect-free image (H, W, 3) in [0, 1]; objects add their background and coverage."""

    image: Array
    background: Array | None = None
    foreground: Array | None = None  # (H, W) coverage of the object in [0, 1]


def _rgb(*values: float) -> Array:
    return np.asarray(values, dtype=np.float64)


def _mix(a: Array, b: Array, t: Array) -> Array:
    """Per-pixel blend of colours ``a`` and ``b`` by weight ``t`` (H, W) in [0, 1]."""
    return a + (b - a) * t[..., None]


def _coverage(signed_distance: Array, px: float) -> Array:
    """Antialiased inside-coverage of a shape from its signed distance (negative inside)."""
    return np.clip(0.5 - signed_distance / px, 0.0, 1.0)


def _smooth_noise(scene: Scene, scale: float) -> Array:
    """Gaussian-filtered white noise, zero mean, unit deviation; ``scale`` relative to the side.

    Filtered at a working resolution where sigma is at most 4 pixels, then upsampled
    (bilinear), so the cost does not grow with the scale.
    """
    work = min(scene.size, max(8, int(np.ceil(4 / scale))))
    field = gaussian_filter(scene.rng.standard_normal((work, work)), scale * work, mode="wrap")
    if work != scene.size:
        field = zoom(field, scene.size / work, order=1, mode="grid-wrap", grid_mode=True)
    return (field - field.mean()) / (field.std() + 1e-8)


def _object(scene: Scene, distance: Array, body: Array, background: Array) -> Rendered:
    """Compose an object (signed distance, body colours (H, W, 3)) over a background image."""
    cover = _coverage(distance, scene.px)
    return Rendered(
        background * (1 - cover[..., None]) + body * cover[..., None], background, cover
    )


def _flat(scene: Scene, colour: Array, grain: float = 0.02) -> Array:
    """A plain background of ``colour`` with faint low-frequency variation."""
    shade = 1 + grain * _smooth_noise(scene, 0.08)
    return np.clip(colour[None, None, :] * shade[..., None], 0, 1)


# ----------------------------------------------------------------------------- textures
def _stripes(s: Scene) -> Rendered:
    t = 0.5 + 0.5 * np.sin(2 * np.pi * 5.0 * (s.u * 0.82 + s.v * 0.57))
    return Rendered(_mix(_rgb(0.45, 0.30, 0.15), _rgb(0.88, 0.76, 0.32), t))


def _checker(s: Scene) -> Rendered:
    t = 0.5 + 0.5 * np.tanh(np.sin(np.pi * 4 * s.u) * np.sin(np.pi * 4 * s.v) * 0.8 / (s.px * 8))
    return Rendered(_mix(_rgb(0.55, 0.10, 0.12), _rgb(0.90, 0.88, 0.85), t))


def _carpet(s: Scene) -> Rendered:
    coarse = _smooth_noise(s, 0.02)
    fine = s.rng.standard_normal((s.size, s.size)) * 0.35
    t = np.clip(0.5 + 0.18 * (coarse + fine), 0, 1)
    return Rendered(_mix(_rgb(0.15, 0.32, 0.14), _rgb(0.50, 0.72, 0.40), t))


def _weave(s: Scene) -> Rendered:
    warp = np.abs(np.sin(np.pi * 6 * s.u)) ** 0.6
    weft = np.abs(np.sin(np.pi * 6 * s.v)) ** 0.6
    over = (np.sin(np.pi * 6 * s.u) * np.sin(np.pi * 6 * s.v)) > 0
    t = np.where(over, warp, weft)
    return Rendered(_mix(_rgb(0.30, 0.18, 0.42), _rgb(0.80, 0.72, 0.88), t))


def _grain(s: Scene) -> Rendered:
    t = np.clip(0.5 + 0.12 * _smooth_noise(s, 0.05) + 0.08 * _smooth_noise(s, 0.006), 0, 1)
    return Rendered(_mix(_rgb(0.38, 0.24, 0.15), _rgb(0.72, 0.52, 0.36), t))


def _dots(s: Scene) -> Rendered:
    cell_u = (s.u * 5) % 1 - 0.5
    cell_v = (s.v * 5) % 1 - 0.5
    distance = (np.hypot(cell_u, cell_v) - 0.22) / 5
    t = _coverage(distance, s.px)
    return Rendered(_mix(_rgb(0.20, 0.55, 0.58), _rgb(0.06, 0.16, 0.20), t))


def _wood(s: Scene) -> Rendered:
    radius = np.hypot((s.u + 2.2) * 1.0, s.v * 0.25) + 0.03 * _smooth_noise(s, 0.1)
    t = 0.5 + 0.5 * np.sin(2 * np.pi * 9 * radius) ** 3
    return Rendered(_mix(_rgb(0.42, 0.25, 0.12), _rgb(0.70, 0.50, 0.30), t))


# ----------------------------------------------------------------------------- objects
def _shaded(s: Scene, colour: Array, strength: float = 0.25) -> Array:
    """Object body lit from the upper left."""
    light = 1 + strength * (-0.6 * s.u - 0.6 * s.v) / 1.5
    return np.clip(colour[None, None, :] * light[..., None], 0, 1)


def _disc(s: Scene) -> Rendered:
    distance = np.hypot(s.u, s.v) - 0.55
    return _object(
        s, distance, _shaded(s, _rgb(0.22, 0.45, 0.85)), _flat(s, _rgb(0.13, 0.13, 0.14))
    )


def _ring(s: Scene) -> Rendered:
    radius = np.hypot(s.u, s.v)
    distance = np.maximum(radius - 0.62, 0.30 - radius)
    return _object(
        s, distance, _shaded(s, _rgb(0.72, 0.72, 0.75)), _flat(s, _rgb(0.25, 0.36, 0.30))
    )


def _box_distance(u: Array, v: Array, half_u: float, half_v: float, corner: float) -> Array:
    du = np.abs(u) - half_u + corner
    dv = np.abs(v) - half_v + corner
    outside = np.hypot(np.maximum(du, 0), np.maximum(dv, 0))
    return outside + np.minimum(np.maximum(du, dv), 0) - corner


def _square(s: Scene) -> Rendered:
    distance = _box_distance(s.u, s.v, 0.5, 0.5, 0.08)
    return _object(
        s, distance, _shaded(s, _rgb(0.92, 0.52, 0.16)), _flat(s, _rgb(0.10, 0.12, 0.26))
    )


def _pill(s: Scene) -> Rendered:
    distance = _box_distance(s.u, s.v, 0.70, 0.30, 0.29)
    halves = _mix(_rgb(0.92, 0.90, 0.86), _rgb(0.80, 0.16, 0.14), _coverage(-s.u, s.px))
    body = np.clip(halves * (1 + 0.2 * (-0.6 * s.v))[..., None], 0, 1)
    return _object(s, distance, body, _flat(s, _rgb(0.22, 0.22, 0.24)))


def _polygon_distance(u: Array, v: Array, sides: int, radius: float) -> Array:
    """Approximate signed distance to a regular polygon (apothem ``radius``)."""
    angle = np.arctan2(v, u)
    sector = 2 * np.pi / sides
    local = (angle + sector / 2) % sector - sector / 2
    return np.hypot(u, v) * np.cos(local) - radius


def _hexnut(s: Scene) -> Rendered:
    distance = np.maximum(_polygon_distance(s.u, s.v, 6, 0.55), 0.24 - np.hypot(s.u, s.v))
    return _object(
        s, distance, _shaded(s, _rgb(0.78, 0.66, 0.34)), _flat(s, _rgb(0.05, 0.05, 0.06))
    )


def _cross(s: Scene) -> Rendered:
    distance = np.minimum(
        _box_distance(s.u, s.v, 0.62, 0.18, 0.03), _box_distance(s.u, s.v, 0.18, 0.62, 0.03)
    )
    return _object(
        s, distance, _shaded(s, _rgb(0.20, 0.62, 0.28)), _flat(s, _rgb(0.86, 0.80, 0.66))
    )


def _triangle(s: Scene) -> Rendered:
    distance = _polygon_distance(s.u, s.v - 0.1, 3, 0.34)
    return _object(
        s, distance, _shaded(s, _rgb(0.95, 0.85, 0.20)), _flat(s, _rgb(0.35, 0.18, 0.42))
    )


def _bolt(s: Scene) -> Rendered:
    shaft = _box_distance(s.u + 0.1, s.v, 0.55, 0.13, 0.02)
    head = _box_distance(s.u - 0.55, s.v, 0.12, 0.30, 0.04)
    threads = 0.85 + 0.15 * np.sin(2 * np.pi * 14 * s.u)
    body = _shaded(s, _rgb(0.78, 0.80, 0.84)) * np.where(s.u < 0.43, threads, 1.0)[..., None]
    return _object(s, np.minimum(shaft, head), body, _flat(s, _rgb(0.12, 0.22, 0.45)))


@dataclass(frozen=True)
class CategorySpec:
    name: str
    render: Callable[[Scene], Rendered]
    is_object: bool
    defects: tuple[str, ...]


#: all synthetic categories; ``n_categories=N`` writes the first N (textures and objects mixed)
CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("stripes", _stripes, False, ("scratch", "spot", "colour")),
    CategorySpec("disc", _disc, True, ("spot", "scratch", "missing")),
    CategorySpec("checker", _checker, False, ("hole", "scratch", "missing")),
    CategorySpec("ring", _ring, True, ("missing", "spot", "colour")),
    CategorySpec("carpet", _carpet, False, ("spot", "colour", "hole")),
    CategorySpec("square", _square, True, ("hole", "scratch", "colour")),
    CategorySpec("weave", _weave, False, ("scratch", "missing", "spot")),
    CategorySpec("pill", _pill, True, ("colour", "spot", "scratch")),
    CategorySpec("grain", _grain, False, ("colour", "scratch", "hole")),
    CategorySpec("hexnut", _hexnut, True, ("scratch", "missing", "hole")),
    CategorySpec("dots", _dots, False, ("missing", "spot", "scratch")),
    CategorySpec("cross", _cross, True, ("missing", "colour", "spot")),
    CategorySpec("wood", _wood, False, ("scratch", "colour", "hole")),
    CategorySpec("triangle", _triangle, True, ("missing", "spot", "colour")),
    CategorySpec("bolt", _bolt, True, ("scratch", "missing", "spot")),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
