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
