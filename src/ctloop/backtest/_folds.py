"""Rolling-origin folds: where each fold trains and what period it scores.

A fold's cut-off moves from ``start`` by ``every`` while it is before ``end``; the fold
scores ``[cutoff, cutoff + every)`` (cut at ``end``) and trains on the period before
``cutoff - gap`` (the gap leaves room for labels that arrive late): from ``train_from``
(or the beginning of the data) with an ``expanding`` window, or the last ``W`` of it with
``sliding:W``. Periods are half-open, ``[start, end)``, and written as ISO dates.

>>> folds = plan_folds("2013-03", "2013-04", every="1w", window="sliding:4w", gap="1w")
>>> [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds[:2]]
[('2013-01-25', '2013-02-22', '2013-03-01', '2013-03-08'), ('2013-02-01', '2013-03-01', '2013-03-08', '2013-03-15')]
>>> len(folds), folds[-1].test_end
(5, '2013-04-01')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from ctloop.errors import ConfigError

__all__ = ["Fold", "consecutive_periods", "parse_period", "parse_when", "plan_folds"]

_When = TypeVar("_When", bound=date)  # a date, a datetime or a pandas Timestamp

_PERIOD = re.compile(r"^\s*(\d+)\s*(d|w|mo)\s*$", re.IGNORECASE)
#: more folds than this is a typo in --every (one per day over ten years is 3,650)
MAX_FOLDS = 5000


@dataclass(frozen=True)
class Fold:
    """One fold: train on ``[train_start, train_end)`` (``train_start`` None: from the
    beginning), score ``[test_start, test_end)``."""

    index: int
    train_start: str | None
    train_end: str
    test_start: str
    test_end: str


def parse_when(text: str, what: str) -> date:
    """``2013-03`` (the first of the month) or ``2013-03-15``.

    >>> parse_when("2013-03", "--from")
    datetime.date(2013, 3, 1)
    """
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            return datetime.strptime(str(text).strip(), fmt).date()
        except ValueError:
            continue
    raise ConfigError(f"{what} {text!r} is not a date; write 2013-03 or 2013-03-15")


def parse_period(text: str, what: str) -> tuple[int, str]:
    """A calendar period: ``Nd`` (days), ``Nw`` (weeks) or ``Nmo`` (months).

    >>> parse_period("2w", "--every")
    (14, 'd')
    >>> parse_period("1mo", "--every")
    (1, 'mo')
    """
    match = _PERIOD.match(str(text))
    if match is None or int(match.group(1)) < 1:
        raise ConfigError(
            f"{what} {text!r} is not a period; write a whole number and d, w or mo (7d, 1w, 1mo)"
        )
    count, unit = int(match.group(1)), match.group(2).lower()
    return (count * 7, "d") if unit == "w" else (count, unit)


def _shift(day: date, period: tuple[int, str], sign: int = 1) -> date:
    from dateutil.relativedelta import relativedelta

    count, unit = period
    step = relativedelta(days=count) if unit == "d" else relativedelta(months=count)
    return day + step if sign > 0 else day - step


def plan_folds(
    start: str,
    end: str,
    *,
    every: str = "1w",
    window: str = "expanding",
    gap: str | None = None,
    train_from: str | None = None,
) -> list[Fold]:
    """The folds from ``start`` to ``end`` (see the module); a bad value raises
    :class:`~ctloop.errors.ConfigError` naming the option."""
    first, last = parse_when(start, "--from"), parse_when(end, "--to")
    if last <= first:
        raise ConfigError(f"--to {end} must come after --from {start}")
    step = parse_period(every, "--every")
    lag = parse_period(gap, "--gap") if gap else None
    origin = parse_when(train_from, "--train-from") if train_from else None
    sliding = _window(window)
    tests = consecutive_periods(
        first,
        last,
        lambda day: _shift(day, step),
        limit=MAX_FOLDS,
        too_many=f"--every {every} from {start} to {end} makes more than {MAX_FOLDS} folds; "
        "choose a longer period",
    )
    folds: list[Fold] = []
    for cutoff, test_end in tests:
        train_end = _shift(cutoff, lag, -1) if lag else cutoff
        train_start = _shift(train_end, sliding, -1) if sliding else origin
        if train_start is not None and train_start >= train_end:
            raise ConfigError(
                f"fold {len(folds) + 1} would train on nothing ({train_start} to {train_end}); "
                "start --from later or --train-from earlier"
            )
        folds.append(
            Fold(
                index=len(folds),
                train_start=train_start.isoformat() if train_start else None,
                train_end=train_end.isoformat(),
                test_start=cutoff.isoformat(),
                test_end=test_end.isoformat(),
            )
        )
    return folds


def consecutive_periods(
    first: _When,
    last: _When,
    advance: Callable[[_When], _When],
    *,
    limit: int,
    too_many: str,
) -> list[tuple[_When, _When]]:
    """The half-open periods ``[start, end)`` that follow each other from ``first`` by
    ``advance`` while they begin before ``last``, the last one cut at ``last``: the folds
    of a backtest and the periods of a replay. More than ``limit`` of them raises
    :class:`~ctloop.errors.ConfigError` saying ``too_many``.

    >>> from datetime import date, timedelta
    >>> consecutive_periods(date(2024, 1, 1), date(2024, 1, 10), lambda d: d + timedelta(days=4),
    ...                     limit=10, too_many="too many")  # doctest: +NORMALIZE_WHITESPACE
    [(datetime.date(2024, 1, 1), datetime.date(2024, 1, 5)),
     (datetime.date(2024, 1, 5), datetime.date(2024, 1, 9)),
     (datetime.date(2024, 1, 9), datetime.date(2024, 1, 10))]
    """
    periods: list[tuple[_When, _When]] = []
    cursor = first
    while cursor < last:
        if len(periods) >= limit:
            raise ConfigError(too_many)
        following = advance(cursor)
        if not following > cursor:
            raise ConfigError(f"a period starting {cursor} does not move the clock on")
        following = min(following, last)
        periods.append((cursor, following))
        cursor = following
    return periods


def _window(text: str) -> tuple[int, str] | None:
    if text == "expanding":
        return None
    kind, _, size = str(text).partition(":")
    if kind != "sliding" or not size:
        raise ConfigError(
            f"--window {text!r} is not a window; write expanding or sliding:SIZE (sliding:8w)"
        )
    return parse_period(size, "--window sliding size")
