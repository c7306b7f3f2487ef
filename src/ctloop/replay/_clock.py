"""The simulated clock of a replay: periods on the data's own time, and what is labelled when.

Periods are half-open, ``[start, end)``, and follow each other by ``every`` from ``start``
until the data ends. At the beginning of a period, the rows whose time is before
``start - label_delay`` have their labels (they arrive ``label_delay`` late); the newest
labelled period is the ``every`` before that cut. Nothing sleeps: the clock jumps.

>>> import pandas as pd
>>> times = pd.Series(pd.date_range("2013-01-01", "2013-03-31", freq="D"))
>>> clock = Clock.of(times, every="1w", label_delay="1w", start="2013-03-05")
>>> first = clock.periods[0]
>>> str(first.start.date()), str(first.end.date()), str(clock.labelled_until(first).date())
('2013-03-05', '2013-03-12', '2013-02-26')
>>> len(clock.periods)
4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctloop.backtest import consecutive_periods
from ctloop.errors import ConfigError
from ctloop.replay._policy import period_offset

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Clock", "Period", "event_times"]

#: more periods than this is a typo in --every
MAX_PERIODS = 5000


@dataclass(frozen=True)
class Period:
    """One served period: ``[start, end)`` on the data's time."""

    index: int
    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        """The period's start as an ISO date (with the time when it has one)."""
        stamp = self.start
        return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


@dataclass(frozen=True)
class Clock:
    """The periods a replay serves and when labels arrive (see the module docstring)."""

    periods: tuple[Period, ...]
    every: pd.DateOffset
    label_delay: pd.DateOffset
    first_time: pd.Timestamp

    @classmethod
    def of(
        cls,
        times: pd.Series,
        *,
        every: str,
        label_delay: str,
        start: str | None = None,
        end: str | None = None,
    ) -> Clock:
        """The clock over ``times`` (the data's time column); ``start`` defaults to the
        point where a fifth of the span has passed, ``end`` to just after the last row."""
        import pandas as pd

        step = period_offset(every, "--every")
        delay = _delay(label_delay)
        first, last = times.min(), times.max()
        begin = _when(start, "--start") if start else first + (last - first) / 5
        stop = _when(end, "--end") if end else last + pd.Timedelta(microseconds=1)
        if begin - delay <= first:
            raise ConfigError(
                f"--start {begin.date()} leaves nothing labelled to train the first model on "
                f"(the data starts {first.date()} and labels arrive {label_delay} late); "
                "start later"
            )
        if begin >= stop:
            raise ConfigError(f"--start {begin.date()} is not before the data's end {stop.date()}")
        bounds = consecutive_periods(
            begin,
            stop,
            lambda cursor: cursor + step,
            limit=MAX_PERIODS,
            too_many=f"--every {every} makes more than {MAX_PERIODS} periods; choose a longer one",
        )
        periods = tuple(Period(i, low, high) for i, (low, high) in enumerate(bounds))
        return cls(periods, step, delay, first)

    def labelled_until(self, period: Period) -> pd.Timestamp:
        """The cut: rows before it have their labels when ``period`` begins."""
        return period.start - self.label_delay

    def newest_labelled(self, period: Period) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The last ``every`` of labelled rows when ``period`` begins: ``[start, end)``."""
        cut = self.labelled_until(period)
        return cut - self.every, cut


def event_times(values: pd.Series, column: str) -> pd.Series:
    """A time column as timestamps (dates, ISO strings, datetimes); values that are not
    times raise :class:`~ctloop.errors.ConfigError` naming the column and one of them."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        found = values
    else:
        try:
            found = pd.to_datetime(values, utc=False)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"--time-column {column!r} holds values that are not times ({exc}); "
                "use a date, datetime or ISO-string column"
            ) from exc
    if getattr(found.dt, "tz", None) is not None:
        found = found.dt.tz_convert("UTC").dt.tz_localize(None)
    if found.isna().any():
        row = int(found.isna().to_numpy().argmax())
        raise ConfigError(f"--time-column {column!r} has no time in row {row}; every row needs one")
    return found


def _when(text: str, what: str) -> pd.Timestamp:
    import pandas as pd

    try:
        return pd.Timestamp(str(text))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{what} {text!r} is not a date; write 2013-03 or 2013-03-05") from exc


def _delay(text: str) -> pd.DateOffset:
    import pandas as pd

    if str(text).strip() in ("0", "0d", "0w"):
        return pd.DateOffset(days=0)
    return period_offset(text, "--label-delay")
