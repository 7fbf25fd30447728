"""The colours of the roles, from Okabe and Ito's palette for colour-blind readers.

Okabe & Ito, *Color Universal Design* (2008): eight colours that stay distinct under the
common colour-vision deficiencies. The roles take four of them, chosen so that each pair also
differs in lightness (it survives greyscale printing): trainable blue, frozen orange, state
bluish green, unknown reddish purple. Charts that group by something else (dtype, layer type)
cycle through the rest of the palette.
"""

from __future__ import annotations

ROLE_COLOURS = {
    "trainable": "#0072B2",  # blue
    "frozen": "#E69F00",  # orange
    "state": "#009E73",  # bluish green
    "unknown": "#CC79A7",  # reddish purple
}
OTHER_COLOURS = ("#56B4E9", "#D55E00", "#F0E442", "#000000")  # sky blue, vermillion, yellow, black
CYCLE = (*ROLE_COLOURS.values(), *OTHER_COLOURS)  # for groups that are not roles


def colour_of(group: str, index: int) -> str:
    """A role's own colour; any other group's by its position in the cycle."""
    return ROLE_COLOURS.get(group, CYCLE[index % len(CYCLE)])
