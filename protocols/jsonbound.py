"""Nesting-depth check for JSON text, run before the standard decoder recurses into it."""
from __future__ import annotations

#: Deepest nesting any JSON document read by a listener may have.
MAX_DEPTH = 32


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of arrays and objects in C{text}, counting stops past C{limit}.

    A linear scan that skips string contents (with their escapes), so
    C{json.loads} is only called on text it can decode without recursing
    deeper than C{limit} levels.

    @param text: JSON text (not yet validated).
    @param limit: the scan stops and returns C{limit + 1} once nesting exceeds it.
    @return: the deepest nesting seen, at most C{limit + 1}.
    """
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest
