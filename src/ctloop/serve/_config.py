"""Settings of one prediction server, passed to each worker process as JSON.

>>> c = ServeConfig("flights@champion", store_url="sqlite:///m.db", artifact_url="art")
>>> ServeConfig.from_json(c.to_json()) == c
True
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["ServeConfig"]


@dataclass(frozen=True)
class ServeConfig:
    """What ``ctloop serve`` serves and how.

    ``reference`` is ``NAME@ALIAS`` (followed: polled every ``poll_seconds``; 0 turns
    polling off), ``NAME@VERSION`` or ``NAME``. ``deployment`` names the deployment whose
    canary/shadow routing applies (default: the model name). Batching joins concurrent
    requests into frames of at most ``max_batch_size`` rows, waiting at most
    ``max_wait_ms``. Bodies over ``max_body_bytes`` get a 413. With ``auth`` every
    request but health probes and metrics scrapes needs an API key of the workspace
    (a viewer key to predict, an editor key to post labels); a revoked key stops working
    within ``key_cache_seconds``.
    """

    reference: str
    store_url: str
    artifact_url: str
    artifact_options: dict[str, Any] = field(default_factory=dict)
    cache_dir: str | None = None
    deployment: str | None = None
    batch: bool = True
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    max_body_bytes: int = 10 * 1024 * 1024
    poll_seconds: float = 5.0
    threads: int = 4
    log_predictions: bool = True
    log_flush_rows: int = 1000
    log_flush_seconds: float = 5.0
    log_max_queue_rows: int = 100_000
    auth: bool = False
    key_cache_seconds: float = 5.0

    def cache_path(self) -> Path:
        """Where downloaded model files are kept (a temporary folder by default)."""
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        return Path(tempfile.gettempdir()) / "ctloop-serve-cache"

    def open_workspace(self) -> Workspace:
        """The workspace the served model and the logs live in."""
        from ctloop.store.workspace import Workspace

        return Workspace.open(
            self.store_url, artifacts=self.artifact_url, artifact_options=self.artifact_options
        )

    def to_json(self) -> str:
        """This config as JSON (what worker processes read)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Read :meth:`to_json`'s form."""
        return cls(**json.loads(text))
