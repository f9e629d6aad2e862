"""Start twisted.logger output as configured: text or JSON lines, filtered by level."""
from __future__ import annotations

import sys

from twisted.logger import (
    FilteringLogObserver, LogLevel, LogLevelFilterPredicate, globalLogBeginner,
    jsonFileLogObserver, textFileLogObserver,
)

_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn,
           "error": LogLevel.error}


def make_observer(fmt: str, level: str, stream):
    """An observer writing C{fmt} ('text' or 'json') events at C{level} and above to C{stream}."""
    base = jsonFileLogObserver(stream) if fmt == "json" else textFileLogObserver(stream)
    return FilteringLogObserver(base, [LogLevelFilterPredicate(defaultLogLevel=_LEVELS[level])])


def start_logging(settings, fmt_override: str | None = None) -> None:
    """Begin global logging once, per the C{[logging]} settings."""
    stream = sys.stdout if settings.file in ("-", "") else open(settings.file, "a", buffering=1)
    observer = make_observer(fmt_override or settings.format, settings.level, stream)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
