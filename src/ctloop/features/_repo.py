"""A feature repository: the definitions a Python file makes, collected, checked as a
whole and turned into the JSON specs the metadata store versions.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "features.py"
>>> _ = path.write_text('''
... from ctloop.features import Entity, FeatureView, Field
... weather = FeatureView("weather", entities=[Entity("origin")], source="w.parquet",
...                       timestamp="time_hour", fields=[Field("temp", float)])
... ''')
>>> [(kind, name) for kind, name, _ in load_definitions(path).specs()]
[('entity', 'origin'), ('feature_view', 'weather')]
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctloop.errors import FeatureDefinitionError
from ctloop.features._definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
)

__all__ = ["FeatureRepo", "load_definitions", "to_spec", "view_from_spec"]

Definition = Entity | FeatureView | OnDemandFeatureView | FeatureService
_KIND = {Entity: "entity", FeatureView: "feature_view", OnDemandFeatureView: "on_demand", FeatureService: "feature_service"}  # fmt: skip

_PLURAL = {"entity": "entities", "feature_view": "feature views", "on_demand": "on-demand views", "feature_service": "feature services"}  # fmt: skip


@dataclass
class FeatureRepo:
    """The definitions of one file, by kind and name, those they use included."""

    origin: str
    found: dict[str, dict[str, Definition]] = field(
        default_factory=lambda: {k: {} for k in _KIND.values()}
    )

    def add(self, definition: Definition) -> None:
        """Add ``definition`` and what it uses; a different one of the same name is refused."""
        kind = _KIND[type(definition)]
        before = self.found[kind].get(definition.name)
        if before is not None and before is not definition and before != definition:
            raise FeatureDefinitionError(
                f"{self.origin} defines two different {_PLURAL[kind]} named "
                f"{definition.name!r}; rename one"
            )
        self.found[kind][definition.name] = definition
        for used in _uses(definition):
            self.add(used)

    def views(self) -> list[FeatureView]:
        """The stored feature views, by name."""
        return [
            v for _, v in sorted(self.found["feature_view"].items()) if isinstance(v, FeatureView)
        ]

    def specs(self) -> list[tuple[str, str, dict[str, Any]]]:
        """``(kind, name, spec)`` for every definition, kinds in order, names sorted."""
        return [
            (kind, name, to_spec(d))
            for kind, found in self.found.items()
            for name, d in sorted(found.items())
        ]


def _uses(definition: Definition) -> list[Definition]:
    if isinstance(definition, FeatureView):
        return list(definition.entities)
    if isinstance(definition, OnDemandFeatureView):
        return list(definition.inputs)
    if isinstance(definition, FeatureService):
        return list(definition.views)
    return []


def to_spec(definition: Definition) -> dict[str, Any]:
    """The JSON spec of a definition: what makes one version differ from another."""
    if isinstance(definition, Entity):
        return {"join_keys": list(definition.join_keys), "description": definition.description}
    if isinstance(definition, FeatureView):
        ttl = None if definition.ttl is None else definition.ttl.total_seconds()
        return {
            "entities": [e.name for e in definition.entities], "join_keys": list(definition.join_keys),
            "source": definition.source, "timestamp": definition.timestamp, "created": definition.created,
            "ttl_seconds": ttl, "fields": [{"name": f.name, "dtype": f.dtype} for f in definition.fields],
            "description": definition.description,
        }  # fmt: skip
    if isinstance(definition, OnDemandFeatureView):
        return {
            "inputs": [v.name for v in definition.inputs],
            "request": [{"name": f.name, "dtype": f.dtype} for f in definition.request],
            "outputs": [{"name": f.name, "dtype": f.dtype} for f in definition.outputs],
            "code": _source_code(definition),
        }
    return {"views": [v.name for v in definition.views], "features": list(definition.feature_refs)}


def view_from_spec(
    name: str, spec: dict[str, Any], entities: dict[str, dict[str, Any]]
) -> FeatureView:
    """The feature view a stored ``spec`` describes (the inverse of :func:`to_spec`);
    ``entities`` maps each entity name to its stored spec.

    >>> from ctloop.features import Entity, Field
    >>> view = FeatureView("v", entities=[Entity("k")], source="v.csv", timestamp="ts", fields=[Field("x", int)], ttl="1h")
    >>> view_from_spec("v", to_spec(view), {"k": to_spec(Entity("k"))}) == view
    True
    """
    missing = [e for e in spec["entities"] if e not in entities]
    if missing:
        raise FeatureDefinitionError(
            f"feature view {name!r} uses entity {missing[0]!r}, which is not defined; apply it with the view"
        )
    return FeatureView(
        name,
        entities=[Entity(e, entities[e]["join_keys"], entities[e].get("description", "")) for e in spec["entities"]],
        source=spec["source"], timestamp=spec["timestamp"], created=spec["created"],
        ttl=spec["ttl_seconds"], fields=[Field(f["name"], f["dtype"]) for f in spec["fields"]],
        description=spec.get("description", ""),
    )  # fmt: skip


def _source_code(view: OnDemandFeatureView) -> str:
    try:
        return inspect.getsource(view.transform)
    except (OSError, TypeError):
        return getattr(view.transform, "__qualname__", view.name)


def load_definitions(path: str | Path) -> FeatureRepo:
    """Run the Python file at ``path`` and collect the definitions it makes at top level."""
    file = Path(path)
    if not file.is_file():
        raise FeatureDefinitionError(
            f"feature definitions file {str(file)!r} does not exist; give the path of a .py file"
        )
    name = f"_ctloop_features_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except FeatureDefinitionError:
        raise
    except Exception as exc:
        raise FeatureDefinitionError(
            f"{file} raised {type(exc).__name__} while loading: {exc}"
        ) from exc
    finally:
        sys.modules.pop(name, None)
    repo = FeatureRepo(str(file))
    for value in vars(module).values():
        if isinstance(value, Entity | FeatureView | OnDemandFeatureView | FeatureService):
            repo.add(value)
    if not any(repo.found.values()):
        raise FeatureDefinitionError(
            f"{file} defines no Entity, FeatureView, on-demand view or FeatureService"
        )
    return repo
