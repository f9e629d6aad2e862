"""The home page: a dashboard of voucher stock, today's activations by channel and result,
the failure ratio, the billing peers' state and the recent housekeeping runs.

Stock is the figure the metrics read at most once per C{[metrics] cache_seconds}
(shared with them when metrics are on); today's activations and the runs are
one read unit of work (L{core.reports.dashboard}), kept for
C{[admin] dashboard_cache_seconds}; the billing peers are read from memory.
Every role sees it: it holds counts and states only, no MSISDN and no HRN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from admin import charts
from core import gauges
from core.reports import dashboard as read_dashboard
from core.reports import day_label
from core.results import FAILURE, SUCCESS, TEMPORARY, ResultCode, outcome
from core.states import VoucherState
from core.timeutil import DAY_MS

#: Housekeeping runs shown, newest first.
RUNS_SHOWN = 8
STATES = tuple(s.value for s in VoucherState)


@dataclass
class Counts:
    """Attempts of one channel (or of all) split by outcome class."""

    attempts: int = 0
    by_outcome: dict = field(default_factory=lambda: {SUCCESS: 0, TEMPORARY: 0, FAILURE: 0})

    def add(self, code: int, n: int) -> None:
        self.attempts += n
        self.by_outcome[outcome(code)] += n

    @property
    def failure_ratio(self) -> float | None:
        """Share of the attempts that did not succeed (temporary or failure), None without any."""
        if not self.attempts:
            return None
        return (self.attempts - self.by_outcome[SUCCESS]) / self.attempts


def result_name(code: int) -> str:
    """C{NAME} of result C{code} (C{UNKNOWN} for a code the table lacks)."""
    try:
        return ResultCode(code).name
    except ValueError:
        return "UNKNOWN"


def summarise(rows) -> dict:
    """Today's figures from (channel, result code, attempts) rows.

    @return: C{{"total": Counts, "channels": [(channel, Counts)],
        "results": [(code, name, outcome class, attempts)]}}, channels by
        name, results by code.
    """
    total, channels, results = Counts(), {}, {}
    for channel, code, n in rows:
        total.add(code, n)
        channels.setdefault(channel, Counts()).add(code, n)
        results[code] = results.get(code, 0) + n
    return {"total": total, "channels": sorted(channels.items()),
            "results": [(c, result_name(c), outcome(c), n) for c, n in sorted(results.items())]}


def stock_table(rows) -> dict:
    """Stock (type, state, count) rows as a table: one row per type, one column per state.

    @return: C{{"states": states shown, "rows": [(type, [counts], total)],
        "totals": [counts], "total": all vouchers}}; the states are the
        life-cycle ones, with any other state the store holds after them.
    """
    extra = sorted({s for _, s, _ in rows} - set(STATES))
    states = STATES + tuple(extra)
    by_type = {}
    for type_code, state, n in rows:
        by_type.setdefault(type_code, dict.fromkeys(states, 0))[state] += n
    table = [(t, [c[s] for s in states], sum(c.values())) for t, c in sorted(by_type.items())]
    totals = [sum(r[1][i] for r in table) for i in range(len(states))]
    return {"states": states, "rows": table, "totals": totals, "total": sum(totals)}


class TodayCache:
    """The last L{core.reports.dashboard} reading, kept for C{ttl} seconds of C{ctx}'s clock."""

    def __init__(self, ctx, ttl: float):
        self.ctx = ctx
        self.ttl = ttl
        self.key = None
        self.value = None
        self.read_at = None

    async def get(self, start: int, end: int) -> dict:
        """Today's reading of [start, end), read again when older than C{ttl} or of another day."""
        now = self.ctx.clock.seconds()
        if self.key == (start, end) and now - self.read_at < self.ttl:
            return self.value
        value = await self.ctx.read(read_dashboard, start, end, RUNS_SHOWN)
        self.key, self.value, self.read_at = (start, end), value, self.ctx.clock.seconds()
        return value


async def read_stock(ctx):
    """(stock rows, their age in seconds or None), or (None, None) when unreadable.

    Uses the context's cached store figures when it has them, else reads now.
    """
    figures = ctx.stock_figures
    if figures is None:
        return await ctx.read(gauges.stock), None
    await figures.fresh()
    if figures.values is None:
        return None, None
    return figures.values["stock"], max(0.0, figures.clock.seconds() - figures.read_at)


def peers(ctx):
    """(connector, [(peer, up)]) of the billing connector, or None when not reported."""
    return ctx.billing_peers() if ctx.billing_peers is not None else None


def register(app, ctx) -> None:
    """Add the home page (C{/})."""
    cache = TodayCache(ctx, ctx.settings.dashboard_cache_seconds)

    @app.route("/", methods=["GET"])
    @ctx.page(None)
    async def home(request, session):
        now = ctx.now()
        start = now // DAY_MS * DAY_MS
        today = await cache.get(start, start + DAY_MS)
        summary = summarise(today["activations"])
        stock, stock_age = await read_stock(ctx)
        chart = charts.hbar([("%d %s" % (c, name), n) for c, name, _, n in summary["results"]],
                            title="Today's attempts per result",
                            colours=[charts.OUTCOME_COLOURS[o] for _, _, o, _ in summary["results"]])
        return ctx.render(request, "home.html", session, title="Dashboard", day=day_label(now // DAY_MS),
                          as_of=int(cache.read_at * 1000), s=summary, chart=chart,
                          stock=stock_table(stock) if stock is not None else None,
                          stock_age=stock_age, billing=peers(ctx), runs=today["runs"])
