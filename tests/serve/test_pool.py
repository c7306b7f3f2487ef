"""Which version answers: following an alias under load, canary share and stickiness,
shadows that never answer, and the automatic rollback of a failing canary."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ctloop.artifacts._logs import read_predictions
from ctloop.serve._pool import CanaryTracker, ModelPool, canary_bucket
from ctloop.serve._pool import RollbackPolicy as PoolPolicy
from ctloop.store._deployments import RollbackPolicy, deploy, start_canary, start_shadow
from tests.serve import _models
from tests.serve.conftest import ROW, LiveServer, ServingStore, live_server


def wait_until(condition: object, what: str, seconds: float = 20.0) -> None:
    """Poll ``condition()`` until true (waiting for background work, not timing it)."""
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def two_versions(store: ServingStore) -> ServingStore:
    """``flights`` v1 predicts 0.1 (champion), v2 predicts 0.2."""
    store.register(_models.constant(0.1), alias="champion")
    store.register(_models.constant(0.2))
    return store


def pool_for(store: ServingStore, seed: int = 0, reference: str = "flights@champion") -> ModelPool:
    pool = ModelPool(
        reference,
        workspace=store.workspace,
        cache_dir=store.tmp / "cache",
        seed=seed,
    )
    pool.refresh()
    return pool


def served_version(live: LiveServer) -> int:
    return int(live.client.get("/version").json()["version"])


def test_alias_moves_are_followed_with_zero_failed_requests(two_versions: ServingStore) -> None:
    config = two_versions.config(poll_seconds=0.1, log_predictions=False)
    outcomes: Counter[tuple[int, int]] = Counter()
    stop = threading.Event()

    def hammer(live: LiveServer) -> None:
        while not stop.is_set():
            answer = live.client.post("/predict", json={"records": [ROW]})
            version = int(answer.headers.get("x-model-version", 0))
            outcomes[(answer.status_code, version)] += 1
            if answer.status_code == 200:
                assert answer.json()["predictions"] == [pytest.approx(version / 10)]

    with live_server(config) as live, ThreadPoolExecutor(8) as pool:
        runs = [pool.submit(hammer, live) for _ in range(8)]
        wait_until(lambda: sum(outcomes.values()) > 50, "requests on version 1")
        two_versions.set_alias("champion", 2)  # promote
        wait_until(lambda: served_version(live) == 2, "the promotion to be served")
        wait_until(lambda: outcomes[(200, 2)] > 50, "requests on version 2")
        two_versions.set_alias("champion", 1)  # roll back
        wait_until(lambda: served_version(live) == 1, "the rollback to be served")
        stop.set()
        for run in runs:
            run.result()
    assert {status for status, _ in outcomes} == {200}
    assert outcomes[(200, 1)] > 0 and outcomes[(200, 2)] > 0


def test_canary_takes_its_share_of_random_traffic(two_versions: ServingStore) -> None:
    ws = two_versions.workspace
    deploy(ws, "flights", "flights", "champion")
    start_canary(ws, "flights", 2, traffic=30, sticky=False)
    pool = pool_for(two_versions, seed=42)
    n = 4000
    to_canary = sum(pool.route().arm == "canary" for _ in range(n))
    # 30% of 4000 = 1200, standard deviation 29: five of them either way
    assert abs(to_canary - 1200) < 5 * 29
    assert pool.versions == [1, 2]


def test_sticky_canary_keeps_each_key_on_one_side(two_versions: ServingStore) -> None:
    ws = two_versions.workspace
    deploy(ws, "flights", "flights", "champion")
    start_canary(ws, "flights", 2, traffic=20, sticky=True)
    pool = pool_for(two_versions)
    keys = [f"customer-{i}" for i in range(3000)]
    first = {k: pool.route(k).arm for k in keys}
    again = {k: pool.route(k).arm for k in keys}
    assert first == again
    share = sum(arm == "canary" for arm in first.values()) / len(keys)
    assert abs(share - 0.20) < 5 * (0.2 * 0.8 / 3000) ** 0.5


def test_shadow_predictions_are_logged_never_returned(two_versions: ServingStore) -> None:
    ws = two_versions.workspace
    deploy(ws, "flights", "flights", "champion")
    start_shadow(ws, "flights", 2)
    with live_server(two_versions.config()) as live:
        answers = [
            live.client.post("/predict", json={"records": [ROW], "request_id": f"r{i}"})
            for i in range(10)
        ]
        wait_until(
            lambda: (
                "ctloop_shadow_requests_total{" in live.client.get("/metrics").text
                and 'outcome="ok"} 10.0' in live.client.get("/metrics").text
            ),
            "ten shadow calls",
        )
    assert {a.json()["predictions"][0] for a in answers} == {0.1}
    assert {a.headers["x-model-version"] for a in answers} == {"1"}
    logged = read_predictions(two_versions.workspace, "flights")
    by_version = logged.groupby("model_version").prediction.agg(["count", "mean"])
    assert by_version.loc[1, "count"] == by_version.loc[2, "count"] == 10
    assert by_version.loc[2, "mean"] == pytest.approx(0.2)


def test_failing_canary_is_rolled_back_and_recorded(store: ServingStore) -> None:
    ws = store.workspace
    store.register(_models.constant(0.1), alias="champion")
    store.register(_models.constant(0.9, broken=True))
    deploy(ws, "flights", "flights", "champion")
    policy = RollbackPolicy(max_error_rate=0.2, window_s=300, min_requests=5)
    start_canary(ws, "flights", 2, traffic=50, sticky=False, policy=policy)
    with live_server(store.config(poll_seconds=0.1, log_predictions=False)) as live:
        answers = [live.client.post("/predict", json={"records": [ROW]}) for _ in range(60)]
        wait_until(
            lambda: (
                (r := ws.deployments.latest("flights")) is not None and r.action == "auto-rollback"
            ),
            "the rollback to be recorded",
        )
        after = [live.client.post("/predict", json={"records": [ROW]}) for _ in range(20)]
        metrics = live.client.get("/metrics").text
        version = live.client.get("/version").json()
    assert {a.status_code for a in answers + after} == {200}  # the primary answered
    assert {a.json()["predictions"][0] for a in answers + after} == {0.1}
    record = ws.deployments.latest("flights")
    assert record is not None and record.state["canary"] is None
    assert "error rate 1.000 > 0.2" in record.reason
    alerts = ws.alerts.list(subject="flights")
    assert len(alerts) == 1 and alerts[0].severity == "critical" and alerts[0].source == "serve"
    assert "ctloop_canary_rollbacks_total 1.0" in metrics
    assert version["canary"] is None


def test_canary_tracker_judges_latency_and_waits_for_enough_requests() -> None:
    tracker = CanaryTracker(PoolPolicy(max_p99_ms=50, window_s=10, min_requests=3))
    tracker.add(True, 80.0, now=0.0)
    tracker.add(True, 80.0, now=1.0)
    assert tracker.breach(now=1.0) is None  # two requests are not enough to judge
    tracker.add(True, 80.0, now=2.0)
    assert tracker.breach(now=2.0) == "p99 latency 80.0 ms > 50 ms over 3 requests in 10s"
    assert tracker.breach(now=30.0) is None  # the window moved past them


def test_a_version_that_is_not_a_model_is_refused(store: ServingStore, tmp_path: Path) -> None:
    from ctloop.artifacts import save_value
    from ctloop.errors import ServingError

    ws = store.workspace
    record = save_value({"a": 1}, ws.artifacts, staging_root=tmp_path)
    ws.metadata.put_artifacts([record])
    ws.registry.register_version("flights", record.id)
    with pytest.raises(ServingError, match="not a Model"):
        pool_for(store, reference="flights@1")


def test_a_non_sticky_canary_splits_by_request_id(two_versions: ServingStore) -> None:
    """The same request ids take the same side whatever the pool's random state, and
    the canary still takes its share of them."""
    ws = two_versions.workspace
    deploy(ws, "flights", "flights", "champion")
    start_canary(ws, "flights", 2, traffic=30, sticky=False)
    ids = [f"w12-{i}" for i in range(4000)]
    first, second = pool_for(two_versions, seed=1), pool_for(two_versions, seed=2)
    one = [first.route(None, i).arm for i in ids]
    other = [second.route("a-client-key", i).arm for i in ids]
    assert one == other
    assert one == ["canary" if canary_bucket(i) < 3000 else "primary" for i in ids]
    assert abs(one.count("canary") - 1200) < 5 * 29


def test_a_client_request_id_chooses_the_canary_side_end_to_end(
    two_versions: ServingStore,
) -> None:
    ws = two_versions.workspace
    deploy(ws, "flights", "flights", "champion")
    start_canary(ws, "flights", 2, traffic=50, sticky=False)
    ids = [f"replay-{i}" for i in range(60)]
    with live_server(two_versions.config(log_predictions=False)) as live:
        wait_until(lambda: live.client.get("/version").json()["canary"] == 2, "the canary")
        for _ in range(2):
            answered = [
                live.client.post("/predict", json={"records": [ROW], "request_id": i}).json()[
                    "model_version"
                ]
                for i in ids
            ]
            assert answered == [2 if canary_bucket(i) < 5000 else 1 for i in ids]
