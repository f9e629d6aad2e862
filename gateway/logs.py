"""Start twisted.logger output as configured: text or JSON lines, filtered by level.

JSON lines (L{json_event}) are for log pipelines: one object per line with an
ISO-8601 UTC C{time}, the C{level} name, the rendered C{message}, the
C{namespace} and the event's own fields; never Twisted's internals
(C{log_format}, C{log_flattened}, the logger object), never a field whose
name says it holds an HRN or a secret.  A log file is reopened on SIGHUP, so
logrotate can move it away (L{LogFile}).
"""
from __future__ import annotations

import datetime as dt
import json
import re
import signal
import sys
import threading

from twisted.logger import (
    FileLogObserver, FilteringLogObserver, LogLevel, LogLevelFilterPredicate, formatEvent,
    globalLogBeginner, textFileLogObserver,
)
from twisted.python.failure import Failure

_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
           "error": LogLevel.error}

#: Keys of legacy C{twisted.python.log} events that are bookkeeping, not event fields.
_LEGACY_KEYS = frozenset({"format", "message", "isError", "system", "time", "why", "failure"})

#: A field whose name has one of these words (C{_}- or camelCase-separated) is never
#: written: HRNs, passwords, PINs, secrets, key material.
_SECRET_WORDS = frozenset({"hrn", "hrns", "password", "passwd", "pwd", "secret", "pin",
                           "token", "credential", "credentials", "private", "material"})

#: Nesting depth kept for list and dict fields; deeper values become text.
_MAX_DEPTH = 3


def json_event(event: dict) -> str:
    """One log event as a JSON object on one line (with its newline).

    @param event: a twisted.logger event.
    @return: C{{"time", "level", "message", "namespace", ...fields}}; a
        failure adds C{"exception"} (type and message) and C{"traceback"}.
    """
    level = event.get("log_level")
    out = {
        "time": _iso_utc(event.get("log_time")),
        "level": level.name if isinstance(level, type(LogLevel.info)) else "info",
        "message": _message(event),
        "namespace": event.get("log_namespace", "log_legacy"),
    }
    if event.get("log_system") and event.get("log_system") != "-":
        out["system"] = str(event["log_system"])
    for k, v in event.items():
        if k.startswith("log_") or k in _LEGACY_KEYS or k in out or _is_secret(k):
            continue
        out[k] = _plain(v, 0)
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        out["exception"] = "%s: %s" % (failure.type.__name__ if failure.type else "Exception",
                                       failure.getErrorMessage())
        out["traceback"] = failure.getTraceback()
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n"


def _iso_utc(t) -> str:
    if not isinstance(t, (int, float)):
        t = dt.datetime.now(dt.timezone.utc).timestamp()
    stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _message(event: dict) -> str:
    try:
        text = formatEvent(event)
    except Exception:                 # a broken format must not lose the event
        text = str(event.get("log_format", ""))
    if not text and isinstance(event.get("log_failure"), Failure):
        text = event["log_failure"].getErrorMessage()
    return text


def _is_secret(name: str) -> bool:
    words = re.split(r"[^a-z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower())
    return any(w in _SECRET_WORDS or "password" in w or "secret" in w for w in words)


def _plain(v, depth: int):
    """C{v} as JSON-native data: scalars kept, containers walked, anything else as text."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if depth < _MAX_DEPTH and isinstance(v, (list, tuple, set, frozenset)):
        return [_plain(x, depth + 1) for x in v]
    if depth < _MAX_DEPTH and isinstance(v, dict):
        return {str(k): _plain(x, depth + 1) for k, x in v.items() if not _is_secret(str(k))}
    if isinstance(v, type(LogLevel.info)):
        return v.name
    return str(v)


class LogFile:
    """An append-mode log file that can be reopened (after logrotate moved it).

    Writes from any thread are serialised; L{reopen} swaps the file between two
    writes.
    """

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, text: str) -> None:
        with self._lock:
            self._file.write(text)

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def reopen(self) -> None:
        """Close the file and open C{path} again (creating it if it was moved away)."""
        new = open(self.path, "a", buffering=1, encoding="utf-8")
        with self._lock:
            old, self._file = self._file, new
        old.close()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def make_observer(fmt: str, level: str, stream):
    """An observer writing C{fmt} ('text' or 'json') events at C{level} and above to C{stream}."""
    base = FileLogObserver(stream, json_event) if fmt == "json" else textFileLogObserver(stream)
    return FilteringLogObserver(base, [LogLevelFilterPredicate(defaultLogLevel=_LEVELS[level])])


def start_logging(settings, fmt_override: str | None = None, *, reactor=None):
    """Begin global logging once, per the C{[logging]} settings.

    With a C{reactor} and a log file, SIGHUP reopens the file (on the reactor
    thread); with standard output, SIGHUP is ignored rather than ending the node.

    @return: the L{LogFile}, or None when logging to standard output.
    """
    log_file = None if settings.file in ("-", "") else LogFile(settings.file)
    observer = make_observer(fmt_override or settings.format, settings.level,
                             log_file if log_file is not None else sys.stdout)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    if reactor is not None:
        if log_file is None:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGHUP,
                          lambda signum, frame: reactor.callFromThread(log_file.reopen))
    return log_file
