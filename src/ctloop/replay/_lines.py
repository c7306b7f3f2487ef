"""What a replay measured: one line per way of running the model (static, each policy,
each fixed schedule), with the metric of every period, its retrains and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Line", "ReplayResult", "Retrain"]


@dataclass(frozen=True)
class Retrain:
    """One retraining: when it fired, why, what the gate said, and whether the new model
    was promoted (it serves from ``period`` on)."""

    period: str
    reasons: tuple[str, ...]
    promoted: bool
    gate: str = ""
    fits: int = 1


@dataclass
class Line:
    """The metric per period of one way of running the model."""

    name: str
    kind: str  # static | policy | schedule
    values: list[float | None] = field(default_factory=list)
    retrains: list[Retrain] = field(default_factory=list)
    description: str = ""
    window: str = ""
    monitor: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float | None:
        """The mean metric over the periods that have one."""
        found = [v for v in self.values if v is not None]
        return sum(found) / len(found) if found else None

    @property
    def promotions(self) -> int:
        """Retrains whose model was promoted."""
        return sum(r.promoted for r in self.retrains)

    @property
    def fits(self) -> int:
        """Models trained (a refit after the gate is a second fit)."""
        return sum(r.fits for r in self.retrains)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        found = asdict(self)
        found["mean"] = self.mean
        return found


@dataclass(frozen=True)
class ReplayResult:
    """Static, each policy and each fixed schedule over the same periods."""

    periods: list[str]
    metric: str
    higher_is_better: bool
    static: Line
    policies: list[Line]
    schedules: dict[str, list[Line]]  # per training window, every k periods
    equal: dict[str, list[Line]] = field(default_factory=dict)  # per policy
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def weekly(self, policy: Line) -> Line:
        """The every-period schedule on ``policy``'s training window."""
        return self.schedules[policy.window][0]

    def better(self, a: float | None, b: float | None) -> bool:
        """Whether metric ``a`` beats ``b``."""
        if a is None or b is None:
            return False
        return a > b if self.higher_is_better else a < b

    def equal_schedules(self, policy: Line) -> list[Line]:
        """Fixed schedules with as many retrains as ``policy``, spread evenly over the
        periods, one per phase."""
        return self.equal.get(policy.name, [])

    def verdict(self, policy: Line) -> dict[str, Any]:
        """How ``policy`` did: the share of the every-period schedule's gain it captured,
        its share of that schedule's retrains, and the fixed schedules of as many retrains
        it beat."""
        weekly, static = self.weekly(policy), self.static.mean
        gain = (weekly.mean or 0.0) - (static or 0.0)
        mine = (policy.mean or 0.0) - (static or 0.0)
        equal = self.equal_schedules(policy)
        beaten = [s for s in equal if self.better(policy.mean, s.mean)]
        return {
            "gap_closed": round(mine / gain, 3) if abs(gain) > 1e-12 else None,
            "retrain_share": round(len(policy.retrains) / max(len(weekly.retrains), 1), 3),
            "equal_schedules": {s.name: _round(s.mean) for s in equal},
            "beats_equal_schedules": bool(equal) and len(beaten) == len(equal),
            "beats_static": self.better(policy.mean, static) or policy.mean == static,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: every line, every period (the report's data)."""
        return {
            "periods": self.periods,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "static": self.static.to_dict(),
            "policies": [p.to_dict() for p in self.policies],
            "schedules": {w: [s.to_dict() for s in lines] for w, lines in self.schedules.items()},
            "equal_schedules": {p: [s.to_dict() for s in ls] for p, ls in self.equal.items()},
            "settings": self.settings,
            "seconds": self.seconds,
        }

    def summary_line(self) -> dict[str, Any]:
        """The one JSON line of ``ctloop replay --json``: means, retrains, why each
        retrain fired, incidents, and each policy's verdict against the schedules."""
        schedules = {
            window: {s.name: {"mean": _round(s.mean), "retrains": len(s.retrains)} for s in lines}
            for window, lines in self.schedules.items()
        }
        return {
            "periods": len(self.periods),
            "metric": self.metric,
            "static": _round(self.static.mean),
            "policies": {
                p.name: {
                    "mean": _round(p.mean),
                    "retrains": len(p.retrains),
                    "promotions": p.promotions,
                    "fits": p.fits,
                    "policy": p.description,
                    **self.verdict(p),
                    "incidents": p.monitor.get("incidents"),
                    "incident_causes": p.monitor.get("incident_causes"),
                    "alerts": p.monitor.get("alerts_delivered"),
                    "verdicts": p.monitor.get("verdicts"),
                    "why": [f"{r.period}: {'; '.join(r.reasons)}" for r in p.retrains],
                    "gate_rejected": [r.period for r in p.retrains if not r.promoted],
                }
                for p in self.policies
            },
            "schedules": schedules,
            "seconds": self.seconds,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
