"""Language tables of C{str.format} templates: merging, looking up with fallbacks, filling in."""
from __future__ import annotations

import functools
import re
import string
from typing import Callable, Iterable

class Blank(dict):
    """Template fields in which a field not given renders empty."""

    def __missing__(self, key):
        return ""


def merge_tables(base: dict[str, dict[str, str]],
                 overrides: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]]:
    """C{base} (language -> key -> template; changed in place and returned)
    with each language's C{overrides} entries put over it, adding languages
    C{base} lacks."""
    for lang, table in (overrides or {}).items():
        base.setdefault(lang, {}).update(table)
    return base


def lookup(tables: dict[str, dict[str, str]], key: str, languages: Iterable[str],
           missing: str = "") -> str:
    """The template C{key} of the first of C{languages} whose table has it,
    else C{missing}."""
    for lang in languages:
        text = tables.get(lang, {}).get(key)
        if text is not None:
            return text
    return missing


def fill(template: str, fields: dict, tidy: Callable[[str], str] | None = None) -> str:
    """C{template} with C{fields} filled in and the ends stripped, then passed
    through C{tidy} when given.

    @param fields: a L{Blank} makes fields it lacks render empty.
    @return: the text; the template itself, untouched, when it is malformed
        or names a field C{fields} cannot give.  Never raises.
    """
    try:
        text = template.format_map(fields).strip()
    except (ValueError, IndexError, KeyError, AttributeError):
        return template
    return tidy(text) if tidy is not None else text


_FIELD_NAME = re.compile(r"[^.\[]*")


@functools.lru_cache(maxsize=1024)
def template_fields(template: str) -> frozenset[str]:
    """The names of the fields C{template} uses (C{"{amount:>8}"} gives
    C{"amount"}); empty for a malformed template, which L{fill} returns as it is."""
    try:
        return frozenset(_FIELD_NAME.match(name).group(0)
                         for _, name, _, _ in string.Formatter().parse(template) if name)
    except ValueError:
        return frozenset()
