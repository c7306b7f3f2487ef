"""Feature definitions as the workspace stores them, rebuilt into views, and what
materialization and online reads need of a workspace: its feature registry and online
store, typed by the store's own interfaces (imported for type checking only, so domain
code is handed a workspace and never loads the store).

An on-demand view is rebuilt from its stored source code: the function is run again
without its decorator, in a namespace holding ``pd`` (pandas), ``np`` (numpy) and
``math``. A transform that needs anything else imports it in its body.
"""

from __future__ import annotations

import ast
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ctloop.errors import FeatureDefinitionError, FeatureError
from ctloop.features._definitions import (
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
)
from ctloop.features._repo import view_from_spec

if TYPE_CHECKING:  # the store's interfaces, for type checking only: never imported to run
    from ctloop.store._features import FeatureRegistry
    from ctloop.store._online import OnlineStore

__all__ = ["Selection", "Workspace", "select_features", "stored_view", "stored_views"]

View = FeatureView | OnDemandFeatureView


class Workspace(Protocol):
    """What the feature store needs of a :class:`ctloop.store.workspace.Workspace`."""

    @property
    def features(self) -> FeatureRegistry: ...

    @property
    def online(self) -> OnlineStore: ...


def _latest(workspace: Workspace) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.kind, r.name): r.spec for r in workspace.features.list()}


def stored_view(name: str, specs: dict[tuple[str, str], dict[str, Any]]) -> View:
    """The feature view or on-demand view ``name`` as last applied."""
    entities = {n: spec for (kind, n), spec in specs.items() if kind == "entity"}
    if ("feature_view", name) in specs:
        return view_from_spec(name, specs[("feature_view", name)], entities)
    if ("on_demand", name) in specs:
        return _on_demand_from_spec(name, specs[("on_demand", name)], specs)
    known = sorted(n for (kind, n) in specs if kind in {"feature_view", "on_demand"})
    raise FeatureError(
        f"feature view {name!r} is not applied in this workspace (applied: "
        f"{', '.join(known) or 'none'}); apply it with `ctloop features apply FILE`"
    )


def stored_views(workspace: Workspace, names: Sequence[str] | None = None) -> list[FeatureView]:
    """The stored feature views ``names`` (every one if ``None``), rebuilt."""
    specs = _latest(workspace)
    if names is None:
        names = sorted(n for (kind, n) in specs if kind == "feature_view")
    views = [stored_view(n, specs) for n in names]
    for view in views:
        if not isinstance(view, FeatureView):
            raise FeatureError(
                f"{view.name!r} is an on-demand feature view, computed when read; "
                "materialize the feature views it uses instead"
            )
    return [v for v in views if isinstance(v, FeatureView)]


def _on_demand_from_spec(
    name: str, spec: dict[str, Any], specs: dict[tuple[str, str], dict[str, Any]]
) -> OnDemandFeatureView:
    inputs = []
    for input_name in spec["inputs"]:
        view = stored_view(input_name, specs)
        assert isinstance(view, FeatureView)
        inputs.append(view)
    fields = [[Field(f["name"], f["dtype"]) for f in spec[part]] for part in ("request", "outputs")]
    return OnDemandFeatureView(
        name, tuple(inputs), tuple(fields[0]), tuple(fields[1]), _transform(name, spec["code"])
    )


def _transform(name: str, code: str) -> Any:
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(code))
        function = next(
            n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        )
    except (SyntaxError, StopIteration) as exc:
        raise FeatureDefinitionError(
            f"the stored code of on-demand feature view {name!r} is not a function; "
            "apply its definitions file again"
        ) from exc
    function.decorator_list = []
    namespace: dict[str, Any] = {"math": math, **_libraries()}
    exec(compile(ast.Module([function], []), f"<on-demand view {name}>", "exec"), namespace)
    return namespace[function.name]


def _libraries() -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    return {"np": np, "numpy": np, "pd": pd, "pandas": pd}


@dataclass(frozen=True)
class Selection:
    """What an online read fetches: the views to look up (on-demand views' inputs
    included) and the requested ``(view, feature)`` pairs in order."""

    lookups: tuple[FeatureView, ...]
    on_demand: tuple[OnDemandFeatureView, ...]
    wanted: tuple[tuple[str, str], ...]


#: selections rebuilt from each registry, with the registry revision they were built at
_BUILT: weakref.WeakKeyDictionary[Any, tuple[int, dict[object, Selection]]] = (
    weakref.WeakKeyDictionary()
)
_BUILT_LOCK = threading.Lock()


def select_features(
    workspace: Workspace, features: str | FeatureService | Sequence[str]
) -> Selection:
    """Resolve ``features`` (a service name, a :class:`FeatureService`, or references
    ``view:feature`` and ``view``) against the stored definitions.

    What was rebuilt is kept while the registry's revision stays the same, so a read
    costs one small query and still sees an apply at once.
    """
    if isinstance(features, FeatureService):
        views: list[View] = list(features.views)
        wanted = [(v.name, f) for v in views for f in v.feature_names]
        return _selection(views, wanted)
    registry = workspace.features
    revision = registry.revision()
    key: object = features if isinstance(features, str) else tuple(features)
    with _BUILT_LOCK:
        built_at, built = _BUILT.get(registry, (-1, {}))
        if built_at == revision and key in built:
            return built[key]
    selection = _select(workspace, features)
    with _BUILT_LOCK:
        built_at, built = _BUILT.get(registry, (-1, {}))
        if built_at != revision:
            built = {}
            _BUILT[registry] = (revision, built)
        built[key] = selection
    return selection


def _select(workspace: Workspace, features: str | Sequence[str]) -> Selection:
    specs = _latest(workspace)
    refs: Sequence[str] = features if not isinstance(features, str) else ()
    if isinstance(features, str):
        if ("feature_service", features) not in specs:
            services = sorted(n for (kind, n) in specs if kind == "feature_service")
            raise FeatureError(
                f"feature service {features!r} is not applied in this workspace (applied: "
                f"{', '.join(services) or 'none'}); apply it or give view:feature references"
            )
        refs = specs[("feature_service", features)]["features"]
    by_name: dict[str, View] = {}
    pairs: list[tuple[str, str]] = []
    for ref in refs:
        view_name, _, feature = ref.partition(":")
        if view_name not in by_name:
            by_name[view_name] = stored_view(view_name, specs)
        view = by_name[view_name]
        names = [feature] if feature else list(view.feature_names)
        for name in names:
            if name not in view.feature_names:
                raise FeatureError(
                    f"feature view {view_name!r} has no feature {name!r} (it has "
                    f"{', '.join(view.feature_names)}); fix the reference {ref!r}"
                )
            pairs.append((view_name, name))
    return _selection(list(by_name.values()), pairs)


def _selection(views: list[View], wanted: list[tuple[str, str]]) -> Selection:
    lookups: dict[str, FeatureView] = {}
    on_demand = []
    for view in views:
        if isinstance(view, OnDemandFeatureView):
            on_demand.append(view)
            lookups.update((v.name, v) for v in view.inputs)
        else:
            lookups[view.name] = view
    return Selection(tuple(lookups.values()), tuple(on_demand), tuple(dict.fromkeys(wanted)))
