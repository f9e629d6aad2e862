"""DTMF grammars of the dialogue: HRN digits, '*' to start again, and 1/2 to confirm.

The HRN uses the platform's built-in digits grammar (VoiceXML 2.0
appendix P, C{builtin:dtmf/digits?minlength=n;maxlength=m}), whose value is
the digit string without separators; the others are inline SRGS 1.0 DTMF
grammars (C{application/srgs+xml}, C{mode="dtmf"}).  C{#} is the
C{termchar} property, so it ends the input and is not part of a grammar.
"""
from __future__ import annotations

from protocols.ivr.vxml import el

SRGS = "application/srgs+xml"


def hrn_digits(lengths) -> object:
    """The built-in digits grammar from the shortest to the longest HRN length."""
    return el("grammar", mode="dtmf",
              src="builtin:dtmf/digits?minlength=%d;maxlength=%d" % (min(lengths), max(lengths)))


def _digit_items():
    return el("one-of", *[el("item", str(d)) for d in range(10)])


def restart() -> object:
    """Any digits followed by C{*}: the caller wants to start the number again."""
    return el("grammar",
              el("rule",
                 el("item", el("ruleref", uri="#restart_digit"), repeat="0-"),
                 el("item", "*"),
                 id="restart", scope="public"),
              el("rule", _digit_items(), id="restart_digit"),
              mode="dtmf", version="1.0", root="restart", type=SRGS)


def confirm() -> object:
    """C{1} (confirm) or C{2} (enter again); the field's value is the key."""
    return el("grammar",
              el("rule", el("one-of", el("item", "1"), el("item", "2")),
                 id="confirm_key", scope="public"),
              mode="dtmf", version="1.0", root="confirm_key", type=SRGS)
