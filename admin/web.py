"""Request helpers shared by the pages: form fields, typed parsing, redirects, headers."""
from __future__ import annotations

import datetime as dt
import re

from werkzeug.routing import IntegerConverter

from core.money import format_money
from core.results import outcome
from core.timeutil import DAY_MS

#: The largest id or serial the store holds (a signed 64-bit integer).
MAX_STORE_INT = 2 ** 63 - 1


class FormError(ValueError):
    """A form field is missing or malformed; the message is shown to the user."""


SECURITY_HEADERS = (
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class StoreIdConverter(IntegerConverter):
    """The C{<int:...>} path converter, bounded to the store's integer range.

    A larger number in a path is no page (404) rather than an overflow in
    the database driver.
    """

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_STORE_INT)
        super().__init__(map, *args, **kwargs)


def secure_headers(request) -> None:
    """Set the headers every GUI answer carries."""
    for k, v in SECURITY_HEADERS:
        request.setHeader(k, v)


def arg(request, name: str, default: str = "") -> str:
    """The text of form/query field C{name} (stripped), or C{default}."""
    values = request.args.get(name.encode())
    if not values:
        return default
    try:
        return values[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise FormError("%s: not valid UTF-8" % name)


def raw_arg(request, name: str) -> bytes:
    """The bytes of field C{name} (an uploaded file), or b''."""
    values = request.args.get(name.encode())
    return values[0] if values else b""


def opt_int(request, name: str, *, minimum: int | None = None, label: str | None = None) -> int | None:
    """Field C{name} as an int, None when empty.

    @raise FormError: not a whole number, or below C{minimum}.
    """
    text = arg(request, name)
    if not text:
        return None
    if not re.fullmatch(r"\d{1,18}", text):
        raise FormError("%s must be a whole number" % (label or name))
    v = int(text)
    if minimum is not None and v < minimum:
        raise FormError("%s must be at least %d" % (label or name, minimum))
    return v


def req_int(request, name: str, **kw) -> int:
    v = opt_int(request, name, **kw)
    if v is None:
        raise FormError("%s is required" % (kw.get("label") or name))
    return v


def opt_day(request, name: str, label: str | None = None) -> dt.date | None:
    """Field C{name} as a date (YYYY-MM-DD), None when empty."""
    text = arg(request, name)
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FormError("%s must be a date (YYYY-MM-DD)" % (label or name))


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp() * 1000)


def day_range(request, frm: str = "from", to: str = "to") -> tuple[int | None, int | None]:
    """(start ms, end ms exclusive) of an inclusive day range form, either may be None."""
    a, b = opt_day(request, frm, "from"), opt_day(request, to, "to")
    lo = day_start_ms(a) if a else None
    hi = day_start_ms(b) + DAY_MS if b else None
    if lo is not None and hi is not None and lo >= hi:
        raise FormError("the 'from' day is after the 'to' day")
    return lo, hi


def serial_range(text: str) -> tuple[int, int] | None:
    """C{A-B} or C{A} as (first, last); None for ''.

    @raise FormError: malformed, or the first serial after the last.
    """
    text = text.replace(" ", "")
    if not text:
        return None
    m = re.fullmatch(r"(\d{1,18})(?:-(\d{1,18}))?", text)
    if not m:
        raise FormError("a serial range is FIRST-LAST, e.g. 1000000000-1000000099")
    a = int(m.group(1))
    b = int(m.group(2)) if m.group(2) else a
    if a > b:
        raise FormError("serial range %d-%d is empty: the first serial is after the last" % (a, b))
    return a, b


def client_origin(request) -> str:
    """Where a request came from, for the audit log."""
    addr = request.getClientAddress()
    return "gui:%s" % getattr(addr, "host", "-")


def redirect(request, location: str) -> bytes:
    """A 303 See Other to C{location} (a local path)."""
    if not location.startswith("/") or location.startswith("//"):
        location = "/"
    request.setResponseCode(303)
    request.setHeader(b"location", location.encode("utf-8"))
    return b""


def money(minor: int | None, currency: str | None = "") -> str:
    """C{1234, 'EUR'} as C{12.34 EUR}, C{500, 'JPY'} as C{500 JPY}
    (L{core.money.format_money}); C{-} for no amount."""
    return "-" if minor is None else format_money(minor, currency)


def result_outcome(code) -> str:
    """The outcome class (C{success}, C{temporary}, C{failure}: L{core.results.outcome})
    of a result code given as a number or as a report's C{"119 INVALID_HRN"} label;
    the CSS class every page draws a result code with."""
    if isinstance(code, str):
        head = code.split(" ", 1)[0]
        if not head.isdigit():
            return outcome(-1)
        code = int(head)
    return outcome(int(code))


def percent(ratio: float | None) -> str:
    """C{0.125} as C{12.5 %}; C{-} for no ratio."""
    return "-" if ratio is None else "%.1f %%" % (ratio * 100)
