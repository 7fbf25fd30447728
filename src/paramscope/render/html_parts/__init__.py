"""What every command's HTML shares, built with the standard library (``html.escape``).

``palette.py`` the role colours (Okabe-Ito, colour-blind safe); ``page.py`` the stylesheet,
a standalone page and a notebook fragment; ``blocks.py`` escaped text, tables, the role totals
and the framework's own lines; ``charts.py`` the SVG icicle of parameters by node and the
stacked bars. Nothing here loads anything remote: a page works offline, alone.
"""
