"""The access-log line of the HTTP listeners (channels and admin GUI), without the query string."""
from __future__ import annotations


def access_log_line(timestamp, request) -> str:
    """A combined-log-style line WITHOUT the query string: an HRN or MSISDN
    sent as a query parameter must never reach the access log."""
    path = request.uri.split(b"?", 1)[0].decode("ascii", "replace")
    client = request.getClientAddress()
    host = getattr(client, "host", "-")
    return '"%s" - - %s "%s %s %s" %d %s' % (
        host, timestamp, request.method.decode("ascii", "replace"), path,
        request.clientproto.decode("ascii", "replace"), request.code,
        request.sentLength or "-")
