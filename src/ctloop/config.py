"""Where ctloop keeps its state: settings from the environment and ``ctloop.yaml``.

Precedence, highest first: environment variables, ``ctloop.yaml`` in the working
directory, built-in defaults. Defaults put everything under ``.ctloop/`` of the
working directory (or ``$CTLOOP_HOME``)::

    CTLOOP_HOME           .ctloop                      state folder
    CTLOOP_STORE_URL      sqlite:///<home>/metadata.db metadata database (postgresql+psycopg://… too)
    CTLOOP_ARTIFACT_URL   <home>/artifacts             artifact store (s3://bucket/prefix too)
    CTLOOP_S3_ENDPOINT_URL                             S3 endpoint for S3-compatible servers
    CTLOOP_EXECUTOR       local                        local | process | ray
    CTLOOP_RAY_ADDRESS                                 Ray cluster (ray://host:10001, auto);
                                                       none: start or attach a local Ray
    CTLOOP_SERVER                                      a ctloop server (https://…): the
                                                       workspace lives there, not here
    CTLOOP_TOKEN                                       its API key (ctl_…), never in the file

Example ``ctloop.yaml``::

    store_url: postgresql+psycopg://ctloop@127.0.0.1:5432/ctloop
    artifact_url: s3://ml-artifacts/ctloop
    artifact_options: {endpoint_url: "http://127.0.0.1:9000"}
    executor: process
    ray_address: ray://head.example.internal:10001   # with executor: ray
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctloop.errors import ConfigError

EXECUTORS = ("local", "process", "ray")
_KNOWN_KEYS = {"home", "store_url", "artifact_url", "artifact_options", "executor", "ray_address"}
_KNOWN_KEYS |= {"server"}  # a team server holds the workspace (token: CTLOOP_TOKEN)
_KNOWN_KEYS |= {"pipelines"}  # pipelines and their triggers (ctloop.triggers)
_KNOWN_KEYS |= {"monitoring", "alerts"}  # read by ctloop.monitor._settings
_KNOWN_KEYS |= {"environments"}  # test/staging/prod (ctloop ci, ctloop env)
_KNOWN_KEYS |= {"sources"}  # ingestion sources (ctloop.ingest)
_KNOWN_KEYS |= {"retraining"}  # retraining policies (ctloop.replay)


@dataclass(frozen=True)
class Settings:
    """Resolved settings for one process.

    >>> s = Settings.load()
    >>> s.store_url.startswith(("sqlite", "postgresql"))
    True
    """

    home: Path
    store_url: str
    artifact_url: str
    artifact_options: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"
    ray_address: str | None = None
    monitoring: dict[str, Any] = field(default_factory=dict)  # see ctloop.monitor._settings
    alerts: dict[str, Any] = field(default_factory=dict)  # see ctloop.monitor._settings
    pipelines: dict[str, Any] = field(default_factory=dict)  # see ctloop.triggers._spec
    sources: dict[str, Any] = field(default_factory=dict)  # see ctloop.ingest
    retraining: dict[str, Any] = field(default_factory=dict)  # see ctloop.replay
    root: Path = field(default_factory=Path.cwd)  # the folder of ctloop.yaml
    server: str | None = None  # a ctloop server's URL: Workspace.open() talks to it
    token: str | None = field(default=None, repr=False)  # its API key, from CTLOOP_TOKEN

    @classmethod
    def load(cls, cwd: Path | None = None) -> Settings:
        """Read ``ctloop.yaml`` (if present) and the environment."""
        cwd = cwd or Path.cwd()
        file_values = _read_settings_file(cwd / "ctloop.yaml")
        home = Path(os.environ.get("CTLOOP_HOME") or file_values.get("home") or cwd / ".ctloop")
        home = home if home.is_absolute() else (cwd / home)
        store_url = os.environ.get("CTLOOP_STORE_URL") or file_values.get("store_url")
        artifact_url = os.environ.get("CTLOOP_ARTIFACT_URL") or file_values.get("artifact_url")
        options = dict(file_values.get("artifact_options") or {})
        endpoint = os.environ.get("CTLOOP_S3_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        executor = os.environ.get("CTLOOP_EXECUTOR") or file_values.get("executor") or "local"
        if executor not in EXECUTORS:
            raise ConfigError(
                f"executor {executor!r} is unknown; use one of {', '.join(EXECUTORS)} "
                "(CTLOOP_EXECUTOR or 'executor:' in ctloop.yaml)"
            )
        return cls(
            home=home,
            store_url=store_url or f"sqlite:///{home / 'metadata.db'}",
            artifact_url=artifact_url or str(home / "artifacts"),
            artifact_options=options,
            executor=executor,
            ray_address=os.environ.get("CTLOOP_RAY_ADDRESS") or file_values.get("ray_address"),
            monitoring=_section(file_values, "monitoring", cwd),
            alerts=_section(file_values, "alerts", cwd),
            pipelines=_section(file_values, "pipelines", cwd),
            sources=_section(file_values, "sources", cwd),
            retraining=_section(file_values, "retraining", cwd),
            root=cwd,
            server=_server(file_values, cwd),
            token=os.environ.get("CTLOOP_TOKEN") or None,
        )


def _read_settings_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import yaml

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            "cannot be decoded; save the file as UTF-8"
        ) from exc
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(values).__name__}")
    check_keys(values, _KNOWN_KEYS, where=str(path))
    return values


def check_keys(
    entry: Mapping[Any, Any],
    known: Collection[str],
    *,
    where: str,
    unknown: str = "has unknown setting(s)",
    after: str = "",
) -> None:
    """Refuse a mapping with keys outside ``known``: a :class:`ConfigError` reading
    ``{where} {unknown} A, B{after}; known: ...``."""
    extra = set(entry) - set(known)
    if extra:
        raise ConfigError(
            f"{where} {unknown} {', '.join(sorted(map(str, extra)))}{after}; "
            f"known: {', '.join(sorted(known))}"
        )


def _server(values: dict[str, Any], cwd: Path) -> str | None:
    """The team server's URL (``CTLOOP_SERVER`` over ``server:``), ``None`` for none."""
    url = os.environ.get("CTLOOP_SERVER") or values.get("server")
    if not url:
        return None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        where = "CTLOOP_SERVER" if os.environ.get("CTLOOP_SERVER") else cwd / "ctloop.yaml"
        raise ConfigError(
            f"{where}: server {url!r} is not a URL; write the ctloop server's address, "
            "e.g. server: https://ctloop.example.internal"
        )
    return url.rstrip("/")


def _section(values: dict[str, Any], key: str, cwd: Path) -> dict[str, Any]:
    """The mapping under ``key`` in ``ctloop.yaml`` (empty when absent)."""
    section = values.get(key) or {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"{cwd / 'ctloop.yaml'}: '{key}:' must hold a mapping, not {type(section).__name__}"
        )
    return section
