"""Argument checks shared by the factorized layers and `factorize`."""

from __future__ import annotations

import numbers


def positive_int(value, argument: str, where: str = "") -> int:
    """`value` as an int, or a ValueError (naming `argument`) when it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"{where}`{argument}` must be a positive integer. Received: {argument}={value!r}"
        )
    return int(value)


def int_pair(value, argument: str, where: str = "") -> tuple[int, int]:
    """An int or a pair of ints, each >= 1, as a pair."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(
                f"{where}`{argument}` must be an integer or a pair of integers. "
                f"Received: {argument}={value!r}"
            )
        return positive_int(value[0], argument, where), positive_int(value[1], argument, where)
    value = positive_int(value, argument, where)
    return value, value


def check_rank_choice(rank, energy, where: str = "") -> None:
    """Exactly one of `rank` and `energy` is given."""
    if (rank is None) == (energy is None):
        raise ValueError(
            f"{where}pass exactly one of `rank` (an integer) and `energy` (a fraction in "
            f"(0, 1]). Received: rank={rank!r}, energy={energy!r}"
        )
