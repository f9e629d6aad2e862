"""The MO keyword grammar: what a subscriber's text asks for, and in which language.

Accepted forms (keywords from the config, case-insensitive, any spacing)::

    RECHARGE 1234 5678 9012 34          keyword + HRN (spaces/dashes inside)
    TOPUP 1234-5678-9012-34             another keyword, maybe another language
    12345678901234                      a bare HRN, when enabled
    RECHARGE 1234 5678 9012 34 0641234567   + beneficiary, when enabled

Anything else is L{Unknown}: the channel answers with help.  The grammar
never validates the HRN beyond "digits, spaces and dashes"; the core does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Characters allowed in the HRN part: digits, and spaces/dashes between them.
_HRN_TOKEN = re.compile(r"^[0-9][0-9-]*$")
#: Tokens that are all HRN tokens, joined by single spaces.
_HRN_TOKENS = re.compile(r"[0-9][0-9-]*(?: [0-9][0-9-]*)*")
_MSISDN_TOKEN = re.compile(r"^\+?[0-9][0-9-]*$")
_SPACES = re.compile(r"[\s\u00a0]+")


@dataclass(frozen=True)
class Recharge:
    """A request to recharge.

    @ivar hrn: the HRN as typed, separators kept (the core normalises it).
    @ivar beneficiary: another number to credit, or C{None}.
    @ivar language: the reply language the keyword selects.
    @ivar keyword: the keyword used (upper case), or C{None} for a bare HRN.
    """

    hrn: str
    language: str
    beneficiary: str | None = None
    keyword: str | None = None

    def __repr__(self) -> str:  # never show the HRN
        return "Recharge(hrn=<%d chars>, language=%r, beneficiary=%r, keyword=%r)" % (
            len(self.hrn), self.language, self.beneficiary, self.keyword)


@dataclass(frozen=True)
class Unknown:
    """A text the grammar does not understand; answer with help in C{language}."""

    language: str


class Grammar:
    """Parses MO texts against the configured keywords."""

    def __init__(self, keywords: dict[str, str], *, default_language: str = "en",
                 bare_hrn: bool = True, allow_beneficiary: bool = False,
                 hrn_lengths=()) -> None:
        """
        @param keywords: keyword -> reply language; a keyword may hold
            several words (C{"TOP UP"}).
        @param hrn_lengths: the digit counts an HRN may have; needed to
            tell the HRN from a beneficiary number (without them, every
            digit after the keyword is taken as the HRN).
        """
        self.keywords = sorted(
            ((tuple(_words(k)), lang) for k, lang in keywords.items()),
            key=lambda item: -len(item[0]))
        self.default_language = default_language
        self.bare_hrn = bare_hrn
        self.allow_beneficiary = allow_beneficiary
        self.hrn_lengths = frozenset(hrn_lengths)
        # The usual MO, "<one-word ASCII keyword> <digits>", matched at once;
        # anything else (or a match this cannot settle) takes the full parse.
        single = {words[0]: lang for words, lang in self.keywords
                  if len(words) == 1 and words[0].isascii() and words[0].isalnum()}
        self._single = single
        self._usual = re.compile(
            r"[ \t]*(%s)[ \t]+([0-9]+)[ \t]*" % "|".join(map(re.escape, sorted(single))),
            re.IGNORECASE | re.ASCII) if single else None

    @classmethod
    def from_settings(cls, grammar, default_language: str, hrn_lengths=()) -> "Grammar":
        """Build from L{protocols.smpp.config.GrammarSettings}.

        @param hrn_lengths: used when the settings list none (the lengths
            of the configured voucher types).
        """
        return cls(grammar.keywords, default_language=default_language,
                   bare_hrn=grammar.bare_hrn, allow_beneficiary=grammar.allow_beneficiary,
                   hrn_lengths=grammar.hrn_lengths or hrn_lengths)

    @property
    def keyword_list(self) -> list[str]:
        """The keywords as configured, for help texts."""
        return [" ".join(words) for words, _ in sorted(self.keywords, key=lambda i: i[0])]

    def keywords_for(self, language: str) -> list[str]:
        """The keywords that select C{language} (all of them if none does)."""
        words = [" ".join(w) for w, lang in self.keywords if lang == language]
        return sorted(words) or self.keyword_list

    def parse(self, text: str) -> Recharge | Unknown:
        """Return what C{text} asks for.  Never raises."""
        if self._usual is not None:
            m = self._usual.fullmatch(text)
            if m is not None and (not self.hrn_lengths or len(m.group(2)) in self.hrn_lengths):
                keyword = m.group(1).upper()
                return Recharge(m.group(2), self._single[keyword], keyword=keyword)
        tokens = _words(text)
        for words, language in self.keywords:
            if tuple(tokens[:len(words)]) == words:
                return self._arguments(tokens[len(words):], language, " ".join(words))
        if self.bare_hrn and tokens and all(_HRN_TOKEN.match(t) for t in tokens):
            return Recharge(" ".join(tokens), self.default_language)
        return Unknown(self.default_language)

    def _arguments(self, args: list[str], language: str, keyword: str) -> Recharge | Unknown:
        if not args:
            return Unknown(language)
        joined = " ".join(args)
        all_hrn = _HRN_TOKENS.fullmatch(joined) is not None
        if all_hrn and self._is_hrn(args):
            return Recharge(joined, language, keyword=keyword)
        if self.allow_beneficiary and self.hrn_lengths:
            for cut in range(len(args) - 1, 0, -1):
                hrn, other = args[:cut], args[cut:]
                number = "".join(other)
                if (all(_HRN_TOKEN.match(t) for t in hrn) and self._is_hrn(hrn, strict=True)
                        and _MSISDN_TOKEN.match(number)):
                    return Recharge(" ".join(hrn), language, beneficiary=number,
                                    keyword=keyword)
        if all_hrn:
            # Digits of the wrong length: the core answers INVALID_HRN.
            return Recharge(joined, language, keyword=keyword)
        return Unknown(language)

    def _is_hrn(self, tokens: list[str], strict: bool = False) -> bool:
        if not self.hrn_lengths:
            return not strict
        return sum(len(t) - t.count("-") for t in tokens) in self.hrn_lengths


def _words(text: str) -> list[str]:
    """Split on any whitespace and upper-case (casefold, then upper)."""
    return [w for w in _SPACES.split(text.strip().casefold().upper()) if w]
