"""The point-in-time join agrees with a brute-force reading of its rule on random data:
ties, ttl edges, rows created late or early, missing entities, and two views keyed differently."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from ctloop.features import Entity, FeatureView, Field, get_historical_features

T0 = datetime(2024, 1, 1)
origin = Entity("origin")
route = Entity("route", join_keys=["origin", "carrier"])

feature_rows = st.lists(
    st.tuples(
        st.sampled_from("ab"),
        st.sampled_from("xy"),
        st.integers(0, 8),
        st.integers(-2, 3),  # created before the timestamp too (a row known in advance)
        st.integers(-50, 50),
    ),
    max_size=25,
)
entity_rows = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from("xyz"), st.integers(-1, 12)),
    min_size=1,
    max_size=20,
)
ttls = st.one_of(st.none(), st.integers(1, 5))


def hours(n: int) -> datetime:
    return T0 + timedelta(hours=n)


def expected(rows, entity, ttl, strict):  # type: ignore[no-untyped-def]
    """The value the rule picks for one entity row, by looking at every feature row."""
    key, t = entity
    best = None
    for order, (k, ts, delay, value) in enumerate(rows):
        created = ts + delay
        if k != key or ts > t or (ttl is not None and ts <= t - ttl) or (strict and created > t):
            continue
        rank = (ts, created, order)
        if best is None or rank > best[0]:
            best = (rank, value)
    return None if best is None else best[1]


def write(folder: Path, name: str, rows, keys) -> str:  # type: ignore[no-untyped-def]
    columns = {k: [r[0][i] for r in rows] for i, k in enumerate(keys)}
    table = pa.table(
        {**columns, "ts": [hours(r[1]) for r in rows], "loaded": [hours(r[1] + r[2]) for r in rows],
         "value": pa.array([r[3] for r in rows], pa.int64())},
        schema=pa.schema([*(pa.field(k, pa.string()) for k in keys), ("ts", pa.timestamp("us")),
                          ("loaded", pa.timestamp("us")), ("value", pa.int64())]),
    )  # fmt: skip
    path = folder / f"{name}.parquet"
    pq.write_table(table, path)
    return str(path)


@settings(max_examples=150, deadline=None)
@given(feature_rows, feature_rows, entity_rows, ttls, ttls, st.booleans())
def test_join_matches_the_brute_force_rule(rows_a, rows_b, entities, ttl_a, ttl_b, strict) -> None:  # type: ignore[no-untyped-def]
    by_origin = [((o,), ts, d, v) for o, _, ts, d, v in rows_a]
    by_route = [((o, c), ts, d, v) for o, c, ts, d, v in rows_b]
    with tempfile.TemporaryDirectory() as tmp:
        a = FeatureView("by_origin", entities=[origin], source=write(Path(tmp), "a", by_origin, ["origin"]),
                        timestamp="ts", created="loaded", ttl=None if ttl_a is None else f"{ttl_a}h",
                        fields=[Field("value", int)])  # fmt: skip
        b = FeatureView("by_route", entities=[route], source=write(Path(tmp), "b", by_route, ["origin", "carrier"]),
                        timestamp="ts", created="loaded", ttl=None if ttl_b is None else f"{ttl_b}h",
                        fields=[Field("value", int)])  # fmt: skip
        frame = pa.table({"origin": [e[0] for e in entities], "carrier": [e[1] for e in entities],
                          "event_timestamp": [hours(e[2]) for e in entities]})  # fmt: skip
        result = get_historical_features(
            frame, [a, b], full_feature_names=True, created_as_tiebreak_only=not strict
        )
    assert result.num_rows == len(entities)
    assert result.select(["origin", "carrier", "event_timestamp"]).equals(frame)
    assert result.schema.field("by_origin__value").type == pa.int64()
    want_a = [expected(by_origin, ((o,), t), ttl_a, strict) for o, _, t in entities]
    want_b = [expected(by_route, ((o, c), t), ttl_b, strict) for o, c, t in entities]
    assert result.column("by_origin__value").to_pylist() == want_a
    assert result.column("by_route__value").to_pylist() == want_b
