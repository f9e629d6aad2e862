"""The fraud view: MSISDN counters and bars, and the failed attempts of each source."""
from __future__ import annotations

from core import fraud

ROWS = 100


def counters(tx, now: int, settings) -> dict:
    """The MSISDN counters and the source counters, most failures first.

    @return: C{{"msisdns": [...], "sources": [...]}}; an MSISDN row says
        where it counts (C{scope}: None everywhere, else the one
        C{"<channel>:<source>"} of a self-asserted channel) and until when it
        is barred (None: not barred), a source row its
        failures this minute and whether it is throttled now.
    """
    msisdns = []
    for r in fraud.list_counters(tx, "msisdn:", ROWS):
        msisdn, scope = fraud.split_subject(r["subject"])
        msisdns.append({"msisdn": msisdn, "scope": scope, "failures": r["failures"],
                        "window_start": r["window_start"], "last": r["last_failure_at"],
                        "barred_until": r["barred_until"] if r["barred_until"] > now else None})
    sources = []
    for r in fraud.list_counters(tx, "source:", ROWS):
        _, channel, source = r["subject"].split(":", 2)
        live = r["window_start"] + fraud.SOURCE_WINDOW_MS > now
        limit = fraud.source_limit(settings, source)
        sources.append({"channel": channel, "source": source, "limit": limit,
                        "failures": r["failures"] if live else 0, "last": r["last_failure_at"],
                        "throttled": live and r["failures"] >= limit})
    return {"msisdns": msisdns, "sources": sources}


def register(app, ctx) -> None:
    """Add C{GET /fraud}."""

    @app.route("/fraud", methods=["GET"])
    @ctx.page("care")
    async def page(request, session):
        settings = ctx.fraud_settings
        now = ctx.now()
        data = await ctx.read(lambda tx: counters(tx, now, settings))
        return ctx.render(request, "fraud.html", session, title="Fraud control", **data)
