"""Retraining policies: when to retrain, on what window, and what a new model must pass.

A policy is declared under ``retraining:`` in ``ctloop.yaml`` (or passed to
``ctloop replay --policy``); every key is optional::

    retraining:
      default: guarded             # the policy `ctloop replay` uses without --policy
                                   # (without one: the built-in `drift`)
      policies:
        guarded:
          on: [degraded, max_age]  # degraded | drift | max_age | schedule
          max_age: 8w              # with max_age: retrain a model this old
          every: 4w                # with schedule: retrain this often
          min_gap: 2w              # never retrain again sooner than this
          window: sliding:12w      # expanding | sliding:SIZE | recency:HALF_LIFE (a
                                   # sliding window holds at least 200 labelled rows)
          gate: {allowed_drop: 0.0}  # the candidate, trained without the newest labelled
                                   # period, may lose this much of the metric against the
                                   # champion on it (false: no gate)
          refit_after_gate: true   # once it passed, refit on everything labelled so far
          monitoring: {allowed_drop: 0.03}  # this policy's overrides of `monitoring:`

``degraded`` fires when the monitor's verdict on the newest labelled period is
``degraded`` (its metric fell beyond the window's noise), ``drift`` when it is ``drift``
(importance-weighted drift) or worse, ``max_age`` when the model has served for
``max_age``, ``schedule`` every ``every``. Periods are written as in ``ctloop backtest``
(``3d``, ``2w``, ``1mo``).

>>> policy = Policy.from_mapping("guarded", {"on": ["degraded", "max_age"], "max_age": "8w"})
>>> policy.on, policy.window, policy.refit_after_gate
(('degraded', 'max_age'), 'sliding:12w', True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError, CtloopError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BUILTIN_POLICIES", "CONDITIONS", "Policy", "load_policies", "period_offset"]

CONDITIONS = ("degraded", "drift", "max_age", "schedule")
_WINDOWS = ("expanding", "sliding", "recency")


@dataclass(frozen=True)
class Policy:
    """One retraining policy (see the module docstring for its keys)."""

    name: str
    on: tuple[str, ...] = ("degraded",)
    max_age: str | None = None
    every: str | None = None
    min_gap: str | None = None
    window: str = "sliding:12w"  # on flights, steadier models than 8w, fresher than all
    gate: Mapping[str, Any] | None = field(default_factory=lambda: {"allowed_drop": 0.0})
    refit_after_gate: bool = True
    monitoring: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, name: str, values: Mapping[Any, Any]) -> Policy:
        """A policy from its ``ctloop.yaml`` mapping; a bad key or value raises
        :class:`~ctloop.errors.ConfigError` naming the policy and the key."""
        if not isinstance(values, Mapping):
            raise ConfigError(
                f"retraining policy {name!r} must be a mapping of settings, not "
                f"{type(values).__name__}"
            )
        # YAML 1.1 reads a bare `on:` key as the boolean True
        found = {("on" if key is True else str(key)): value for key, value in values.items()}
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = set(found) - known
        if unknown:
            raise ConfigError(
                f"retraining policy {name!r} has unknown key(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        on = found.get("on", cls.on)
        found["on"] = (on,) if isinstance(on, str) else tuple(on or ())
        if found.get("gate") is False:
            found["gate"] = None
        elif found.get("gate") is True:
            found["gate"] = {"allowed_drop": 0.0}
        found["monitoring"] = dict(found.get("monitoring") or {})
        policy = cls(name=name, **found)
        policy.check()
        return policy

    def check(self) -> None:
        """Refuse a policy that cannot run, naming the key and the value."""
        where = f"retraining policy {self.name!r}"
        bad = [c for c in self.on if c not in CONDITIONS]
        if bad or not self.on:
            raise ConfigError(
                f"{where}: 'on' is {list(self.on)!r}; list one or more of {', '.join(CONDITIONS)}"
            )
        for key, condition in (("max_age", "max_age"), ("every", "schedule")):
            value = getattr(self, key)
            if condition in self.on and value is None:
                raise ConfigError(f"{where}: 'on: {condition}' needs '{key}:' (e.g. 8w)")
            if value is not None:
                period_offset(value, f"{where}: '{key}'")
        if self.min_gap is not None:
            period_offset(self.min_gap, f"{where}: 'min_gap'")
        window_spec(self.window, f"{where}: 'window'")
        if self.gate is not None:
            if not isinstance(self.gate, Mapping) or set(self.gate) - {"allowed_drop"}:
                raise ConfigError(
                    f"{where}: 'gate' is {self.gate!r}; write {{allowed_drop: 0.0}} or false"
                )
            drop = self.gate.get("allowed_drop", 0.0)
            if not isinstance(drop, int | float) or drop < 0:
                raise ConfigError(
                    f"{where}: 'gate: allowed_drop' is {drop!r}; use a number 0 or more "
                    "(in the metric's units)"
                )
        from ctloop.monitor._settings import MonitorSettings

        try:
            MonitorSettings.from_mapping(self.monitoring)  # a bad override fails here
        except CtloopError as exc:
            raise ConfigError(f"{where}: 'monitoring:' override: {exc}") from exc

    @property
    def allowed_drop(self) -> float | None:
        """The gate's allowed drop of the metric (None: no gate)."""
        return None if self.gate is None else float(self.gate.get("allowed_drop", 0.0))

    def describe(self) -> str:
        """One line for a person.

        >>> Policy("p", on=("degraded", "max_age"), max_age="8w").describe()
        'on degraded or max_age 8w; window sliding:12w; gate allowed_drop 0; refit after gate'
        """
        conditions = []
        for condition in self.on:
            value = {"max_age": self.max_age, "schedule": self.every}.get(condition)
            conditions.append(f"{condition} {value}" if value else condition)
        parts = [f"on {' or '.join(conditions)}", f"window {self.window}"]
        if self.min_gap:
            parts.append(f"min_gap {self.min_gap}")
        gate = "no gate" if self.gate is None else f"gate allowed_drop {self.allowed_drop:g}"
        parts.append(gate)
        parts.append("refit after gate" if self.refit_after_gate else "no refit")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The policy as ``ctloop.yaml`` would hold it, with its name."""
        found = asdict(self)
        found["on"] = list(self.on)
        found["gate"] = None if self.gate is None else dict(self.gate)
        return found


#: policies every project has, by name (``ctloop replay --policy degraded``)
BUILTIN_POLICIES: dict[str, dict[str, Any]] = {
    # retrain when the metric fell, or when features the model leans on moved, at most
    # every four weeks: nothing on a stable stretch, and no more than a monthly calendar.
    # A candidate may lose up to 0.005 on the one labelled period it is gated on (less
    # than the noise of a week's AUC on a few thousand rows), so that a refit on fresher
    # data is not thrown away on a coin toss
    "drift": {
        "on": ["degraded", "drift"],
        "min_gap": "4w",
        "window": "sliding:12w",
        "gate": {"allowed_drop": 0.005},
    },
    "degraded": {"on": ["degraded"]},
    "guarded": {"on": ["degraded", "max_age"], "max_age": "8w", "min_gap": "2w"},
    "monthly": {"on": ["schedule"], "every": "4w", "gate": False},
}
DEFAULT_POLICY = "drift"


def load_policies(names: Sequence[str], retraining: Mapping[str, Any]) -> list[Policy]:
    """The policies named in ``names``: a name under ``retraining: policies:`` of
    ``ctloop.yaml``, a built-in (:data:`BUILTIN_POLICIES`), or a YAML file holding one
    policy's mapping (``name:`` optional) or a ``policies:`` mapping of several. With no
    names, ``retraining: default`` (else the built-in ``drift``)."""
    declared = _declared(retraining)
    chosen = list(names) or [str(retraining.get("default") or DEFAULT_POLICY)]
    policies: list[Policy] = []
    for name in chosen:
        if name in declared:
            policies.append(Policy.from_mapping(name, declared[name]))
        elif name in BUILTIN_POLICIES:
            policies.append(Policy.from_mapping(name, BUILTIN_POLICIES[name]))
        elif name.endswith((".yaml", ".yml")):
            policies.extend(_policies_in_file(Path(name)))
        else:
            known = sorted({*declared, *BUILTIN_POLICIES})
            raise ConfigError(
                f"retraining policy {name!r} is not declared; use one of {', '.join(known)} "
                "(declared under 'retraining: policies:' in ctloop.yaml, or built in), or "
                "a YAML file of one"
            )
    seen = [p.name for p in policies]
    if len(set(seen)) != len(seen):
        raise ConfigError(f"policies {seen} repeat a name; give each a different one")
    return policies


def _declared(retraining: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(retraining) - {"default", "policies"}
    if unknown:
        raise ConfigError(
            f"ctloop.yaml 'retraining:' has unknown key(s) {', '.join(sorted(unknown))}; "
            "known: default, policies"
        )
    declared = retraining.get("policies") or {}
    if not isinstance(declared, Mapping):
        raise ConfigError(
            "ctloop.yaml 'retraining: policies:' must map policy names to their settings"
        )
    return {str(k): v for k, v in declared.items()}


def _policies_in_file(path: Path) -> list[Policy]:
    import yaml

    if not path.exists():
        raise ConfigError(f"policy file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"policy file {path} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"policy file {path} must hold a mapping, not {type(values).__name__}")
    if "policies" in values:
        return [Policy.from_mapping(str(k), v) for k, v in _declared(values).items()]
    values = dict(values)
    return [Policy.from_mapping(str(values.pop("name", path.stem)), values)]


def period_offset(text: str, what: str) -> pd.DateOffset:
    """A period (``3d``, ``2w``, ``1mo``) as a pandas offset for the simulated clock.

    >>> period_offset("2w", "every")
    <DateOffset: days=14>
    """
    import pandas as pd

    from ctloop.backtest import parse_period

    count, unit = parse_period(str(text), what)
    return pd.DateOffset(days=count) if unit == "d" else pd.DateOffset(months=count)


def window_spec(text: str, what: str) -> tuple[str, pd.DateOffset | None]:
    """``expanding``, ``sliding:SIZE`` or ``recency:HALF_LIFE`` as (kind, offset).

    >>> window_spec("recency:8w", "window")
    ('recency', <DateOffset: days=56>)
    """
    kind, _, size = str(text).partition(":")
    if kind not in _WINDOWS or (kind == "expanding") != (not size):
        raise ConfigError(
            f"{what} is {text!r}; write expanding, sliding:SIZE (sliding:8w) or "
            "recency:HALF_LIFE (recency:8w: a row's weight halves every 8 weeks)"
        )
    return kind, (period_offset(size, what) if size else None)
