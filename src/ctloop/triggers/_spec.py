"""Pipelines and their triggers as declared under ``pipelines:`` in ``ctloop.yaml``.

Each trigger has one kind, chosen by the key it carries:

========================  ==========================================================
``schedule: "0 3 * * *"``  a cron expression (UTC); ``catchup: true`` fires slots missed
                           while the scheduler was down, else only a slot at most
                           ``grace`` (default 10m) old fires
``new_files: "glob"``      new files or partitions (folders) matching an fsspec glob;
                           ``parameter:`` names the pipeline parameter that gets them
``new_rows: "SELECT …"``   a DuckDB query returning one value (``max(ts)``, ``count(*)``);
                           fires when the value changes
``new_spans: SOURCE``      a source of ``sources:`` (:mod:`ctloop.ingest`): ingests its new
                           spans and fires when a span arrived or changed late
``monitor: {model, …}``    a monitoring job; fires on the verdicts in ``on`` (default
                           ``degraded``: drift alone does not retrain) every ``every``
                           (default 1h)
``manual: true``           only on demand (every pipeline can also be fired by name)
========================  ==========================================================

Common options: ``max_concurrent`` (default 1), ``cooldown`` (e.g. ``6h``), ``on_lost``
(``retry``: a firing whose process died is retried once, the default; ``report``: it is
only recorded), ``parameters`` (merged over the pipeline's).

>>> specs = pipeline_specs({"train": {"pipeline": "p.py:train",
...     "triggers": [{"name": "nightly", "schedule": "0 3 * * *"}]}})
>>> specs[0].triggers[0].qualified_name, specs[0].triggers[0].kind
('train/nightly', 'schedule')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ctloop.durations import parse_duration
from ctloop.errors import TriggerConfigError

KINDS = ("schedule", "new_files", "new_rows", "new_spans", "monitor", "manual")
#: the ``trigger`` recorded on a run, per kind (``monitor`` depends on the verdict)
RUN_TRIGGER = {
    "schedule": "schedule",
    "new_files": "new-data",
    "new_rows": "new-data",
    "new_spans": "new-data",
}
#: the verdicts a monitor trigger fires on unless ``on`` says: a drift that costs the model
#: nothing is no reason to retrain
DEFAULT_ON = ("degraded",)
_COMMON = {"name", "max_concurrent", "cooldown", "on_lost", "parameters"}
_OPTIONS = {
    "schedule": {"catchup", "grace"},
    "new_files": {"parameter", "storage_options"},
    "new_rows": {"parameter"},
    "new_spans": {"parameter"},
    "monitor": {"every"},
    "manual": set(),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of one pipeline; ``source`` is the value of its kind's key."""

    name: str
    pipeline: str
    kind: str
    source: Any
    options: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    max_concurrent: int = 1
    cooldown: timedelta | None = None
    on_lost: str = "retry"

    @property
    def qualified_name(self) -> str:
        """``pipeline/trigger``: the trigger's key in the metadata store and the CLI."""
        return f"{self.pipeline}/{self.name}"


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline the scheduler may start: its reference, parameters and triggers."""

    name: str
    reference: str
    parameters: dict[str, Any] = field(default_factory=dict)
    triggers: tuple[TriggerSpec, ...] = ()


def pipeline_specs(section: dict[str, Any]) -> list[PipelineSpec]:
    """Parse the ``pipelines:`` mapping of ctloop.yaml; a bad entry raises
    :class:`~ctloop.errors.TriggerConfigError` naming it."""
    return [_pipeline_spec(str(name), body) for name, body in section.items()]


def find_trigger(specs: list[PipelineSpec], name: str) -> tuple[PipelineSpec, TriggerSpec]:
    """The trigger ``PIPELINE/TRIGGER`` (or a trigger name that is unique), or the
    pipeline ``PIPELINE`` fired on demand (a ``manual`` trigger named ``manual``)."""
    matches = [(p, t) for p in specs for t in p.triggers if name in (t.qualified_name, t.name)]
    if len(matches) == 1:
        return matches[0]
    for p in specs:
        if p.name == name:
            return p, TriggerSpec(name="manual", pipeline=p.name, kind="manual", source=True)
    known = [t.qualified_name for p in specs for t in p.triggers] + [p.name for p in specs]
    problem = "is ambiguous" if matches else "is not declared"
    raise TriggerConfigError(
        f"trigger {name!r} {problem}; use one of {', '.join(known) or '(none)'} "
        "(declared under 'pipelines:' in ctloop.yaml)"
    )


def _pipeline_spec(name: str, body: Any) -> PipelineSpec:
    if not isinstance(body, dict) or not isinstance(body.get("pipeline"), str):
        raise TriggerConfigError(
            f"pipeline {name!r} in ctloop.yaml needs 'pipeline: path/to/file.py:NAME' "
            f"(got {body!r})"
        )
    unknown = set(body) - {"pipeline", "parameters", "triggers"}
    if unknown:
        raise TriggerConfigError(
            f"pipeline {name!r} in ctloop.yaml has unknown key(s) {', '.join(sorted(unknown))}; "
            "known: pipeline, parameters, triggers"
        )
    params = _mapping(body.get("parameters"), f"parameters of pipeline {name!r}")
    raw = body.get("triggers") or []
    if not isinstance(raw, list):
        raise TriggerConfigError(f"triggers of pipeline {name!r} must be a list, not {raw!r}")
    triggers = tuple(_trigger_spec(name, entry) for entry in raw)
    names = [t.name for t in triggers]
    if len(set(names)) != len(names):
        raise TriggerConfigError(f"pipeline {name!r} declares a trigger name twice: {names}")
    return PipelineSpec(name, body["pipeline"], params, triggers)


def _trigger_spec(pipeline: str, entry: Any) -> TriggerSpec:
    where = f"a trigger of pipeline {pipeline!r}"
    if not isinstance(entry, dict) or not _NAME.match(str(entry.get("name", ""))):
        raise TriggerConfigError(
            f"{where} needs a 'name' of letters, digits, '.', '_' or '-' (got {entry!r})"
        )
    where = f"trigger {pipeline}/{entry['name']}"
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise TriggerConfigError(
            f"{where} must have exactly one of {', '.join(KINDS)} (got {sorted(entry)})"
        )
    kind = kinds[0]
    unknown = set(entry) - _COMMON - _OPTIONS[kind] - {kind}
    if unknown:
        raise TriggerConfigError(
            f"{where} has unknown key(s) {', '.join(sorted(unknown))}; a {kind} trigger takes "
            f"{', '.join(sorted(_COMMON | _OPTIONS[kind] | {kind}))}"
        )
    return TriggerSpec(
        name=str(entry["name"]),
        pipeline=pipeline,
        kind=kind,
        source=_check_source(kind, entry[kind], where),
        options={k: entry[k] for k in _OPTIONS[kind] if k in entry},
        parameters=_mapping(entry.get("parameters"), f"parameters of {where}"),
        max_concurrent=_positive_int(entry.get("max_concurrent", 1), where),
        cooldown=parse_duration(entry["cooldown"], f"cooldown of {where}", error=TriggerConfigError)
        if "cooldown" in entry
        else None,
        on_lost=_on_lost(entry.get("on_lost", "retry"), where),
    )


def _check_source(kind: str, value: Any, where: str) -> Any:
    if kind == "schedule":
        from croniter import croniter

        if not isinstance(value, str) or not croniter.is_valid(value):
            raise TriggerConfigError(
                f"{where} has schedule {value!r}, which is not a cron expression; write five "
                "fields such as '0 3 * * *' (03:00 UTC every day)"
            )
    elif kind == "monitor":
        value = _mapping(value, f"monitor of {where}")
        if True in value:  # YAML 1.1 reads an unquoted key `on` as the boolean true
            value = {**{k: v for k, v in value.items() if k is not True}, "on": value[True]}
        if not isinstance(value.get("model"), str):
            raise TriggerConfigError(f"{where} needs 'monitor: {{model: NAME, ...}}'")
        on = value.get("on", list(DEFAULT_ON))
        bad = set(on) - {"drift", "degraded", "no-data"}
        if bad:
            raise TriggerConfigError(
                f"{where} fires on unknown verdict(s) {sorted(bad)}; use drift, degraded, no-data"
            )
    elif kind in ("new_files", "new_rows", "new_spans") and not isinstance(value, str):
        raise TriggerConfigError(f"{where} needs a text {kind} (got {value!r})")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TriggerConfigError(f"{what} must be a mapping, not {value!r}")
    return dict(value)


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TriggerConfigError(f"{where} has max_concurrent {value!r}; use a whole number >= 1")
    return value


def _on_lost(value: Any, where: str) -> str:
    if value not in ("retry", "report"):
        raise TriggerConfigError(f"{where} has on_lost {value!r}; use retry or report")
    return str(value)
