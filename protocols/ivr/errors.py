"""Errors of the IVR channel: each bad request carries the reason sent back and logged.

A bad request is answered with the VoiceXML error document (a spoken
apology), the reason in the C{X-Ivoms-Error} header and the document's
C{<meta name="ivoms-error">}, and the configured HTTP status (200 by
default, so that every VoiceXML browser plays the apology).
"""
from __future__ import annotations

#: reason -> what it means (for operators; docs/ivr.md lists them).
REASONS = {
    "missing_msisdn": "the caller's number (ani_parameter) is absent or empty",
    "missing_hrn": "the hrn parameter is absent or empty",
    "bad_hrn": "the hrn is not digits of a configured voucher length",
    "bad_parameter": "a parameter is repeated, not UTF-8, or malformed (lang, attempt)",
    "oversize": "the body or a parameter is larger than configured",
    "method_not_allowed": "the activation URL only accepts POST",
    "not_found": "no such IVR document",
    "internal": "the channel failed unexpectedly (logged)",
}


class BadRequest(Exception):
    """A request the channel refuses; C{reason} is a key of L{REASONS}."""

    def __init__(self, reason: str, lang: str | None = None) -> None:
        assert reason in REASONS, reason
        super().__init__(reason)
        self.reason = reason
        self.lang = lang
