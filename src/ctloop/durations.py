"""Durations as people write them in settings and on the command line: ``45s``, ``15m``,
``1.5h``, ``7d``, ``2w``, or a plain number of seconds. The one parser every part of
ctloop uses (garbage collection ages, trigger cooldowns and schedules, monitoring
windows, canary waits), so ``1d`` means the same everywhere.

>>> parse_duration("1.5h")
datetime.timedelta(seconds=5400)
>>> parse_duration(90)
datetime.timedelta(seconds=90)
>>> parse_duration("soon", "cooldown of flights/retrain")
Traceback (most recent call last):
...
ctloop.errors.ConfigError: cooldown of flights/retrain 'soon' is not a duration; write a number and a unit such as 45s, 15m, 6h, 30d or 2w
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ctloop.errors import ConfigError, CtloopError

__all__ = ["UNIT_SECONDS", "is_duration", "parse_duration"]

#: seconds in one of each unit a duration may end with
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)


def is_duration(text: str) -> bool:
    """Whether ``text`` is a number and a unit (``30m``), as :func:`parse_duration` takes.

    >>> is_duration("30m"), is_duration("1000")
    (True, False)
    """
    return _DURATION.match(text) is not None


def parse_duration(
    value: str | int | float,
    what: str = "duration",
    *,
    error: type[CtloopError] = ConfigError,
) -> timedelta:
    """``value`` as a timedelta: a number and a unit (s, m, h, d, w), or a number of
    seconds. Anything else raises ``error`` (a :class:`~ctloop.errors.ConfigError` unless
    the caller's area has its own) with a sentence that starts with ``what``.

    >>> parse_duration("2W")
    datetime.timedelta(days=14)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return timedelta(seconds=float(value))
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is not None:
            return timedelta(seconds=float(match.group(1)) * UNIT_SECONDS[match.group(2).lower()])
    raise error(
        f"{what} {value!r} is not a duration; write a number and a unit such as "
        "45s, 15m, 6h, 30d or 2w"
    )
