"""What a SOAP answer says for a result code: its name and its default text."""

from __future__ import annotations

from core.results import DEFAULT_TEXT, ResultCode


def result_name(code) -> str:
    """
    The name a SOAP answer gives a result code.

    @param code: a stored or returned result code (an C{int}).
    @return: the L{ResultCode} member name, or C{"UNKNOWN"}.
    """
    try:
        return ResultCode(code).name
    except ValueError:
        return "UNKNOWN"


def result_text(code) -> str:
    """
    The text a SOAP answer gives a result code.

    @param code: a stored or returned result code (an C{int}).
    @return: the core's default text of the code, or C{""} when unknown.
    """
    try:
        return DEFAULT_TEXT[ResultCode(code)]
    except (ValueError, KeyError):
        return ""
