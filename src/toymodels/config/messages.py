"""The pieces of a one-line error message: a suggestion for a misspelt name, a user's value shown short.

It imports nothing from the package, so every floor (the registry first) can use it.

Example:
    >>> did_you_mean("lrr", ["lr", "eps", "steps"])
    " (did you mean 'lr'?)"
    >>> shown([[[[1]]]] * 100)
    '[[[[...]]], [[[...]]], [[[...]]], [[[...]]], ...]'
"""

from __future__ import annotations

import difflib
import reprlib
from typing import Any, Iterable

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 3, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 80, 80, 40


def did_you_mean(word: Any, choices: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` naming the closest of ``choices`` to ``word`` (difflib), or "" when none is close."""
    names = [str(c) for c in choices]
    if not isinstance(word, str) or not names:
        return ""
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not close:  # a different case ("LR" for "lr") is close too
        lowered = {n.lower(): n for n in names}
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)]
    return f" (did you mean {close[0]!r}?)" if close and close[0] != word else ""


def shown(value: Any) -> str:
    """``repr(value)`` cut short (a 3,000-level nested list or a 400-digit number stays readable on one line)."""
    return _REPR.repr(value).replace("\n", " ")
