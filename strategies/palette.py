"""The Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"): eight colours that stay
distinct under the common colour-vision deficiencies. Detectors declare their colour from it
(:class:`strategies.detectors.registry.DetectorSpec`); the report's figures use it. Kept in a
module of its own, with no import, so that reading a colour imports neither torch nor matplotlib.
"""

from __future__ import annotations

OKABE_ITO = {
    "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7", "black": "#000000",
}
#: the colours a detector without its own is given, in this order (yellow is left out: it
#: is hard to see on white)
SPARE_ORDER = ("orange", "sky_blue", "reddish_purple", "black", "blue", "bluish_green",
               "vermillion")


def assign_colors(declared: dict[str, str | None], others: list[str] | tuple[str, ...] = ()
                  ) -> dict[str, str]:
    """``{name: "#RRGGBB"}`` for every name of ``declared`` (in its order) and of ``others``.

    A name's declared colour first; the names without one (``declared``'s in their order, then
    ``others`` not in ``declared``, in name order) take the :data:`SPARE_ORDER` colours nobody
    declares, cycling when there are more names than colours. The detector registry colours its
    detectors this way, and the report the detectors a run recorded (so the same installation
    gives the same colours with or without importing the detectors).
    """
    colors = {name: color for name, color in declared.items() if color}
    taken = {c.upper() for c in colors.values()}
    spare = [OKABE_ITO[k] for k in SPARE_ORDER if OKABE_ITO[k].upper() not in taken] or [
        OKABE_ITO[k] for k in SPARE_ORDER]
    uncoloured = [n for n in declared if n not in colors]
    uncoloured += sorted(set(others) - set(declared))
    for k, name in enumerate(uncoloured):
        colors[name] = spare[k % len(spare)]
    return colors
