"""Environments of a project (``environments:`` in ``ctloop.yaml``): each names its own
metadata store, artifact store and deployment target, and whether a promotion into it
needs an approval.

    environments:
      test:
        store_url: sqlite:///.ctloop/test/metadata.db
        artifact_url: .ctloop/test/artifacts
        ci: {pipeline: pipeline.py:training}       # what `ctloop ci` runs there
      staging:
        store_url: postgresql+psycopg://ctloop@db/staging
        artifact_url: s3://models/staging
        endpoint: https://staging.example.internal/churn
      prod:
        store_url: https://ctloop.example.internal   # a ctloop server: approving needs admin
        endpoint: https://models.example.internal/churn
        requires_approval: true                      # or `approval: required`

Environments are ordered as declared: a promotion into one comes from the one before it
(``promote_from:`` says otherwise); the first comes from the project's own workspace.

>>> envs = parse_environments({"test": {}, "prod": {"requires_approval": True}}, "ctloop.yaml")
>>> [e.name for e in envs.values()], envs["prod"].requires_approval, envs["prod"].source
(['test', 'prod'], True, 'test')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.config import check_keys
from ctloop.errors import ConfigError

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["PROJECT", "Environment", "environment_named", "load_environments"]

#: the name of the project's own workspace (``.ctloop/``) as a promotion's source
PROJECT = "project"
_KEYS = frozenset(
    {
        "store_url",
        "artifact_url",
        "artifact_options",
        "endpoint",
        "requires_approval",
        "approval",
        "promote_from",
        "ci",
    }
)


@dataclass(frozen=True)
class Environment:
    """One environment: where its models and runs live and where it serves.

    ``source`` is the environment a promotion into this one comes from (:data:`PROJECT`
    for the project's own workspace); ``settings`` is its whole mapping in ``ctloop.yaml``
    (``ci:`` included).
    """

    name: str
    store_url: str
    artifact_url: str
    source: str
    endpoint: str | None = None
    requires_approval: bool = False
    artifact_options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Workspace:
        """The workspace of this environment (a ctloop server when ``store_url`` is one)."""
        from ctloop.store.workspace import Workspace

        return Workspace.open(
            self.store_url, artifacts=self.artifact_url, artifact_options=self.artifact_options
        )


def load_environments(path: Path | None = None) -> dict[str, Environment]:
    """The environments of ``ctloop.yaml`` (default: the working directory's), in the
    order they are declared; a :class:`ConfigError` names the file and the bad field."""
    import yaml

    path = path or Path("ctloop.yaml")
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: environments are declared in a project's ctloop.yaml "
            "(run this in the project folder, or create one with `ctloop init`)"
        )
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    section = (loaded if isinstance(loaded, dict) else {}).get("environments") or {}
    if not isinstance(section, dict) or not section:
        raise ConfigError(
            f"{path} declares no environments; add an 'environments:' mapping, "
            "e.g. test, staging and prod, each with its store_url and artifact_url"
        )
    return parse_environments(section, str(path))


def parse_environments(section: dict[str, Any], where: str) -> dict[str, Environment]:
    """Environments from the ``environments:`` mapping (``where`` names it in errors)."""
    found: dict[str, Environment] = {}
    previous = PROJECT
    for name, raw in section.items():
        found[str(name)] = _environment(str(name), raw or {}, previous, where)
        previous = str(name)
    for env in found.values():
        if env.source != PROJECT and env.source not in found:
            raise ConfigError(
                f"{where}: environments.{env.name}.promote_from names {env.source!r}, which "
                f"is not an environment; known: {', '.join(found)} (or {PROJECT})"
            )
        if env.source == env.name:
            raise ConfigError(f"{where}: environments.{env.name}.promote_from names itself")
    return found


def environment_named(name: str, environments: dict[str, Environment]) -> Environment:
    """The environment ``name``, or a :class:`ConfigError` listing the known ones."""
    if name not in environments:
        raise ConfigError(
            f"ctloop.yaml has no environment {name!r}; known: {', '.join(environments)}"
        )
    return environments[name]


def _environment(name: str, raw: Any, previous: str, where: str) -> Environment:
    at = f"{where}: environments.{name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{at} must be a mapping of settings, not {type(raw).__name__}")
    check_keys(raw, _KEYS, where=at)
    strings = {key: _string(raw, key, at) for key in ("store_url", "artifact_url", "endpoint")}
    options = raw.get("artifact_options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{at}.artifact_options must be a mapping, e.g. {{endpoint_url: ...}}")
    return Environment(
        name=name,
        store_url=strings["store_url"] or f"sqlite:///.ctloop/{name}/metadata.db",
        artifact_url=strings["artifact_url"] or f".ctloop/{name}/artifacts",
        source=_string(raw, "promote_from", at) or previous,
        endpoint=strings["endpoint"],
        requires_approval=_requires_approval(raw, at),
        artifact_options=dict(options),
        settings=dict(raw),
    )


def _string(raw: dict[str, Any], key: str, at: str) -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{at}.{key} must be a string, not {type(value).__name__} {value!r}")


def _requires_approval(raw: dict[str, Any], at: str) -> bool:
    flag = raw.get("requires_approval")
    if flag is not None and not isinstance(flag, bool):
        raise ConfigError(f"{at}.requires_approval must be true or false, not {flag!r}")
    approval = raw.get("approval")
    if approval not in (None, "required", "none"):
        raise ConfigError(f"{at}.approval must be 'required' or 'none', not {approval!r}")
    return bool(flag) or approval == "required"
