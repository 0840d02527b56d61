"""Checks for hand-written settings: each error names the key path, the value and what is allowed.

Used by `Recipe` and `Target`. A key path is dotted from the top of the file, e.g.
`layers.fc1.prune.structure`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any


def _show(value: Any) -> str:
    return repr(value)


def check_mapping(value: Any, path: str) -> Mapping:
    """`value` itself when it is a mapping; else a ValueError naming `path`."""
    if not isinstance(value, Mapping):
        raise ValueError(
            f"`{path}` must be a mapping (key: value pairs). Received: {path}={_show(value)} "
            f"({type(value).__name__})"
        )
    return value


def check_keys(data: Mapping, allowed: Iterable[str], path: str) -> None:
    """Raises on a key of `data` that is not in `allowed`, with the closest allowed key."""
    allowed = list(allowed)
    for key in data:
        if key in allowed:
            continue
        where = f"{path}.{key}" if path else str(key)
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown key `{where}`.{hint} Allowed keys"
            f"{' under `' + path + '`' if path else ''}: {', '.join(allowed)}."
        )


def check_choice(value: Any, path: str, choices: tuple) -> Any:
    """`value` when it is one of `choices` (compared as given, so 8 is not '8')."""
    if isinstance(value, bool) or value not in choices:
        listed = ", ".join(_show(c) for c in choices)
        raise ValueError(f"`{path}` must be one of {listed}. Received: {path}={_show(value)}")
    return value


def check_int(value: Any, path: str, minimum: int) -> int:
    """`value` as an int when it is an integer >= `minimum` (1.0 is taken, 1.5 and True are not)."""
    ok = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not ok or value < minimum:
        raise ValueError(
            f"`{path}` must be an integer >= {minimum}. Received: {path}={_show(value)}"
        )
    return int(value)


def check_number(
    value: Any,
    path: str,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """`value` as a float when it is a finite number in the interval from `low` to `high`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = (
        number
        and math.isfinite(value)
        and (value > low if low_open else value >= low)
        and (value < high if high_open else value <= high)
    )
    if not inside:
        left = "(" if low_open else "["
        right = ")" if high_open or high == math.inf else "]"
        upper = "inf" if high == math.inf else f"{high:g}"
        raise ValueError(
            f"`{path}` must be a number in {left}{low:g}, {upper}{right}. "
            f"Received: {path}={_show(value)}"
        )
    return float(value)
