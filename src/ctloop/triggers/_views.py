"""Plain rows of triggers and firings for the CLI and the REST API.

>>> from ctloop.triggers import pipeline_specs
>>> specs = pipeline_specs({"t": {"pipeline": "p.py:t", "triggers": [{"name": "m", "manual": True}]}})
>>> watched(specs[0].triggers[0])
'on demand'
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ctloop.store._triggers import FiringRecord
from ctloop.store.statuses import FiringStatus
from ctloop.triggers._spec import DEFAULT_ON, PipelineSpec, TriggerSpec, find_trigger

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace


def trigger_rows(workspace: Workspace, specs: list[PipelineSpec]) -> list[dict[str, Any]]:
    """One row per declared trigger: what it watches and what the trigger store of
    ``workspace`` says of it."""
    store = workspace.triggers
    states = {s.name: s for s in store.list_states()}
    active = store.list_firings(statuses=FiringStatus.active())
    rows = []
    for pipeline in specs:
        for trigger in pipeline.triggers:
            state = states.get(trigger.qualified_name)
            rows.append(
                {
                    "trigger": trigger.qualified_name,
                    "pipeline": pipeline.reference,
                    "kind": trigger.kind,
                    "watches": watched(trigger),
                    "last_checked_at": state.last_checked_at if state else None,
                    "last_fired_at": state.last_fired_at if state else None,
                    "cooldown_until": state.cooldown_until if state else None,
                    "active": sum(f.trigger == trigger.qualified_name for f in active),
                }
            )
    return rows


def watched(trigger: TriggerSpec) -> str:
    """A short text of what a trigger watches."""
    if trigger.kind == "schedule":
        return f"cron {trigger.source}"
    if trigger.kind == "monitor":
        return f"monitor {trigger.source['model']} on {list(trigger.source.get('on', DEFAULT_ON))}"
    if trigger.kind == "manual":
        return "on demand"
    if trigger.kind == "new_spans":
        return f"spans of source {trigger.source}"
    return str(trigger.source)


def firing_row(firing: FiringRecord) -> dict[str, Any]:
    """A firing as a plain dict (times as datetimes; the CLI prints them as text)."""
    return asdict(firing)


def parse_fire_params(specs: list[PipelineSpec], name: str, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` parameters for an on-demand firing, converted by the pipeline's
    annotations (the pipeline is loaded to read them) into JSON-storable values."""
    if not pairs:
        return {}
    from ctloop.pipeline._loading import load_pipeline
    from ctloop.pipeline._params import parse_cli_params, to_json_param

    pipeline, _ = find_trigger(specs, name)
    pipeline_obj, _ = load_pipeline(pipeline.reference)
    values = parse_cli_params(pipeline_obj.fn, pairs, f"pipeline '{pipeline_obj.name}'")
    return {k: to_json_param(v) for k, v in values.items()}
