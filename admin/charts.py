"""Server-side SVG bar charts (no JavaScript, no external files)."""
from __future__ import annotations

from markupsafe import Markup, escape

COLOURS = ("#1f5fa8", "#2e8b57", "#c77c02", "#b3261e", "#6a4c93", "#00838f")
#: Bar colour of each result outcome class (L{core.results.outcome}), as the CSS draws them.
OUTCOME_COLOURS = {"success": "#2e8b57", "temporary": "#c77c02", "failure": "#b3261e"}
#: Width of one character of a 12 px label, generously (labels are never cut).
CHAR_W = 8.2


def _fmt(v) -> str:
    return "{:,}".format(v).replace(",", " ") if isinstance(v, int) else str(v)


def hbar(items, *, title: str, width: int = 560, bar: int = 22, colours=None) -> Markup:
    """A horizontal bar chart of C{items} [(label, value)], one bar per item.

    The label column is as wide as the longest label (the chart grows wider
    rather than cutting a label).

    @param colours: one colour per item (default: L{COLOURS} in turn).
    """
    items = list(items)
    height = 30 + max(1, len(items)) * (bar + 6)
    top = max([v for _, v in items] + [1])
    label_w = max([170] + [int(16 + CHAR_W * len(str(label))) for label, _ in items])
    width = max(width, label_w + 390)
    span = width - label_w - 70
    out = ['<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" '
           'viewBox="0 0 %d %d"><title>%s</title>' % (width, height, width, height, escape(title)),
           '<text x="8" y="18" font-size="13" font-weight="600" fill="#1d2430">%s</text>' % escape(title)]
    for i, (label, value) in enumerate(items):
        y = 28 + i * (bar + 6)
        w = int(span * value / top) if top else 0
        out.append('<text x="8" y="%d" font-size="12" fill="#1d2430">%s</text>'
                   % (y + bar - 7, escape(str(label))))
        colour = colours[i] if colours is not None else COLOURS[i % len(COLOURS)]
        out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>'
                   % (label_w, y, max(w, 1), bar, colour))
        out.append('<text x="%d" y="%d" font-size="12" fill="#1d2430">%s</text>'
                   % (label_w + max(w, 1) + 5, y + bar - 7, _fmt(value)))
    if not items:
        out.append('<text x="8" y="44" font-size="12" fill="#66707d">no data</text>')
    out.append("</svg>")
    return Markup("".join(out))


def vbar(items, *, title: str, width: int = 760, height: int = 220) -> Markup:
    """A vertical bar chart of C{items} [(label, value)] (e.g. one bar per day)."""
    items = list(items)
    top = max([v for _, v in items] + [1])
    left, bottom, plot_h = 40, 40, height - 70
    n = max(1, len(items))
    step = (width - left - 10) / n
    bw = min(40, max(2, step * 0.7))
    out = ['<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" '
           'viewBox="0 0 %d %d"><title>%s</title>' % (width, height, width, height, escape(title)),
           '<text x="8" y="18" font-size="13" font-weight="600" fill="#1d2430">%s</text>' % escape(title),
           '<text x="4" y="%d" font-size="11" fill="#66707d">%s</text>' % (height - bottom - plot_h + 4, _fmt(top)),
           '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b9c3cf"/>'
           % (left, height - bottom, width - 10, height - bottom)]
    every = max(1, n // 10)
    for i, (label, value) in enumerate(items):
        h = int(plot_h * value / top) if top else 0
        x = left + i * step
        out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>'
                   % (x, height - bottom - h, bw, max(h, 0), COLOURS[0], escape(str(label)), _fmt(value)))
        if i % every == 0:
            out.append('<text x="%.1f" y="%d" font-size="10" fill="#1d2430">%s</text>'
                       % (x, height - bottom + 14, escape(str(label))[5:]))
    if not items:
        out.append('<text x="%d" y="%d" font-size="12" fill="#66707d">no data</text>' % (left + 8, height // 2))
    out.append("</svg>")
    return Markup("".join(out))
