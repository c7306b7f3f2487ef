"""``ctloop serve``: serve a registered model over HTTP (native, MLflow, KServe V2).

    ctloop serve flights@champion --port 8080 --workers 2 --max-batch-size 32

With ``--workers N`` each worker process loads the model once and listens on a socket of
its own on the port (``SO_REUSEPORT``; ``--shared-socket``: one socket for all).

With ``--auth`` it asks for the API keys of ``ctloop keys create``.
The server follows the alias (a promotion or rollback is picked up within
``--poll-seconds``) and the deployment's canary and shadow set by ``ctloop deploy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ctloop.serve._config import ServeConfig
    from ctloop.store.workspace import Workspace


def serve(
    reference: Annotated[
        str,
        typer.Argument(
            help="NAME@ALIAS (followed), NAME@VERSION, NAME (latest), or a bundle folder."
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes, each with the model.")] = 1,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port/--shared-socket",
            help="With --workers: a listening socket per worker (SO_REUSEPORT, connections "
            "spread evenly by the kernel) or one socket all workers accept from.",
        ),
    ] = True,
    batch: Annotated[
        bool, typer.Option("--batch/--no-batch", help="Join concurrent requests into batches.")
    ] = True,
    max_batch_size: Annotated[int, typer.Option(help="Most rows per model call.")] = 32,
    max_wait_ms: Annotated[
        float, typer.Option(help="Longest wait for more requests to batch (ms).")
    ] = 2.0,
    max_body_bytes: Annotated[
        int, typer.Option(help="Larger request bodies are refused with 413.")
    ] = 10 * 1024 * 1024,
    poll_seconds: Annotated[
        float, typer.Option(help="Re-read the alias and deployment this often (0: never).")
    ] = 5.0,
    deployment: Annotated[
        str | None, typer.Option(help="Deployment whose canary/shadow apply [default: NAME].")
    ] = None,
    threads: Annotated[int, typer.Option(help="Prediction threads per worker.")] = 4,
    log_predictions: Annotated[
        bool,
        typer.Option("--log-predictions/--no-log-predictions", help="Log inputs and outputs."),
    ] = True,
    cache_dir: Annotated[
        Path | None, typer.Option(help="Folder for downloaded model files.")
    ] = None,
    log_flush_seconds: Annotated[
        float, typer.Option(help="Write logged predictions and labels at least this often.")
    ] = 5.0,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Require the workspace's API keys (as `ctloop server`): a viewer key to "
            "predict, an editor key to post /feedback; health and /metrics stay open.",
        ),
    ] = False,
) -> None:
    """Serve a registered model: /predict, /invocations, /v2/models/NAME/infer, /metrics."""
    import os

    # Requests run on several threads already; a model's own OpenMP threads on top of them
    # oversubscribe the cores (one-row calls get ten times slower under load). The other
    # native pools get each worker's share of the cores (ctloop.serve._server).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ctloop.config import Settings
    from ctloop.serve._config import ServeConfig
    from ctloop.serve._server import serve as run_server

    if not auth and not is_loopback(host):
        from ctloop.cli.output import err_console

        err_console.print(
            f"[bold yellow]warning:[/] the server will listen on {host}:{port} with no "
            "authentication: anyone who can reach that port can get predictions and post "
            "labels; to limit who can, start it with --auth (API keys from `ctloop keys create`) "
            "or bind 127.0.0.1 behind an authenticating proxy",
            soft_wrap=True,
            highlight=False,
        )
    settings = Settings.load()
    store_url, artifact_url = settings.store_url, settings.artifact_url
    from ctloop.bundle import is_bundle

    if is_bundle(reference):  # a bundle serves from a scratch workspace of its own
        from ctloop.bundle import open_bundle

        reference, store_url, artifact_url = open_bundle(reference).scratch_workspace()
        poll_seconds = 0
    config = ServeConfig(
        reference,
        store_url=store_url,
        artifact_url=artifact_url,
        artifact_options=dict(settings.artifact_options),
        cache_dir=None if cache_dir is None else str(cache_dir),
        deployment=deployment,
        batch=batch,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        max_body_bytes=max_body_bytes,
        poll_seconds=poll_seconds,
        threads=threads,
        log_predictions=log_predictions,
        log_flush_seconds=log_flush_seconds,
        auth=auth,
    )
    if auth:
        _warn_without_keys(config)
    run_server(config, host=host, port=port, workers=workers, reuse_port=reuse_port)


def _warn_without_keys(config: ServeConfig) -> None:
    """Say so when ``--auth`` is asked for on a workspace without one usable key."""
    with config.open_workspace() as workspace:
        warn_without_keys(workspace)


def warn_without_keys(workspace: Workspace) -> None:
    """Say so when ``--auth`` is asked for on ``workspace`` and it has no usable key."""
    from ctloop.cli.output import err_console

    usable = any(k.refusal() is None for k in workspace.keys.list())
    if not usable:
        err_console.print(
            "[bold yellow]warning:[/] --auth is on and this workspace has no usable API key, "
            "so every request but health probes will be refused; create one with "
            "`ctloop keys create --name NAME --role viewer`",
            soft_wrap=True,
            highlight=False,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.x, ::1)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False
