"""What the inspection commands print: Rich for people, ``--json`` for scripts."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ctloop.cli.output import console, emit_json, seconds, short, styled, when
from ctloop.errors import CtloopError, DataVersionError, NotFoundError, ParameterError
from ctloop.store.metadata import resolve_run
from ctloop.store.statuses import ExecutionStatus

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace


def _workspace(settings: Settings | None = None, *, reconcile: bool = False) -> Workspace:
    from ctloop.cli.workspace import open_workspace

    return open_workspace(settings, reconcile=reconcile)


# -- runs ------------------------------------------------------------------------------
def runs_list(*, pipeline: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """``ctloop runs list``."""
    workspace = _workspace(reconcile=True)
    runs = workspace.metadata.list_runs(pipeline=pipeline, status=status, limit=limit)
    if as_json:
        emit_json([_run_dict(r) for r in runs])
        return
    table = Table(show_edge=False, box=None)
    for col in ("run", "pipeline", "status", "trigger", "started", "duration", "user"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            short(r.id),
            r.pipeline,
            styled(r.status),
            r.trigger,
            when(r.started_at),
            seconds(r.duration_s),
            r.user,
        )
    console.print(table if runs else "no runs yet: start one with `ctloop run FILE.py:PIPELINE`")


def _run_dict(run: Any) -> dict[str, Any]:
    data = asdict(run)
    data["duration_s"] = run.duration_s
    return data


def runs_show(run_id: str, *, as_json: bool) -> None:
    """``ctloop runs show``."""
    workspace = _workspace(reconcile=True)
    meta = workspace.metadata
    run = resolve_run(meta, run_id)
    executions = meta.list_executions(run.id)
    events = {x.id: meta.events_of_execution(x.id) for x in executions}
    metrics = meta.get_metrics(run.id) + _source_metrics(meta, executions)
    if as_json:
        emit_json(
            {
                "run": _run_dict(run),
                "executions": [
                    {
                        **asdict(x),
                        "duration_s": x.duration_s,
                        "inputs": {
                            e.name: e.artifact_id for e in events[x.id] if e.kind == "input"
                        },
                        "outputs": {
                            e.name: e.artifact_id for e in events[x.id] if e.kind == "output"
                        },
                    }
                    for x in executions
                ],
                "metrics": [asdict(m) for m in metrics],
                "params": [asdict(p) for p in meta.get_params(run.id)],
                "tags": [asdict(t) for t in meta.get_tags(run.id)],
            }
        )
        return
    console.print(f"[bold]run {run.id}[/]  {styled(run.status)}")
    console.print(
        f"pipeline   {run.pipeline}  version {short(run.pipeline_version)}"
        f"  git {run.git_commit or '-'}"
    )
    console.print(f"reference  {run.reference}")
    console.print(
        f"started    {when(run.started_at)} by {run.user}@{run.host} pid {run.pid}"
        f"  trigger {run.trigger}  executor {run.executor}"
    )
    console.print(f"duration   {seconds(run.duration_s)}")
    console.print(f"parameters {run.parameters}")
    if run.error:
        console.print(f"[red]error      {run.error}[/]", markup=True)
    table = Table(show_edge=False, box=None, title="steps", title_justify="left")
    for col in ("step", "status", "attempt", "duration", "outputs", "cache key"):
        table.add_column(col)
    for x in executions:
        outs = ", ".join(
            f"{e.name}={short(e.artifact_id)}" for e in events[x.id] if e.kind == "output"
        )
        note = f" from {short(x.cached_from)}" if x.cached_from else ""
        table.add_row(
            x.step,
            styled(x.status) + note,
            str(x.attempt),
            seconds(x.duration_s),
            outs,
            short(x.cache_key),
        )
    console.print(table)
    if metrics:
        mt = Table(show_edge=False, box=None, title="metrics", title_justify="left")
        for col in ("key", "value", "step"):
            mt.add_column(col)
        for m in metrics:
            mt.add_row(m.key, f"{m.value:.6g}", "" if m.step is None else str(m.step))
        console.print(mt)
    for x in executions:
        if x.status == ExecutionStatus.FAILED and x.error:
            console.print(f"\n[bold red]{x.step} failed:[/]")
            console.print(x.error.rstrip(), markup=False, highlight=False)


def _source_metrics(meta: Any, executions: list[Any]) -> list[Any]:
    """Metrics that cached steps' source executions logged (in their own runs)."""
    found = []
    for x in executions:
        if x.status == ExecutionStatus.CACHED and x.cached_from:
            source = meta.get_execution(x.cached_from)
            found += [m for m in meta.get_metrics(source.run_id) if m.execution_id == source.id]
    return found


def runs_logs(run_id: str, step: str, *, as_json: bool = False) -> None:
    """``ctloop runs logs``: the latest attempt's log (a cached step's source log)."""
    workspace = _workspace()
    run = resolve_run(workspace.metadata, run_id)
    executions = workspace.metadata.list_executions(run.id)
    attempts = [x for x in executions if x.step == step]
    if not attempts:
        steps = sorted({x.step for x in executions})
        raise NotFoundError(
            f"run {short(run.id)} has no step {step!r}; its steps: {', '.join(steps) or '(none)'}"
        )
    execution = attempts[-1]
    note = ""
    if execution.status == ExecutionStatus.CACHED and execution.cached_from:
        note = f"(cached: the log of execution {short(execution.cached_from)})"
        execution = workspace.metadata.get_execution(execution.cached_from)
    if execution.log_uri:
        text = workspace.artifacts.read_object(execution.log_uri).decode(errors="replace")
    elif execution.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED):
        text = ""
    else:
        raise NotFoundError(
            f"step {step!r} of run {short(run.id)} has no stored log (status {execution.status})"
        )
    if as_json:
        emit_json(
            {
                "run_id": run.id,
                "step": step,
                "execution_id": execution.id,
                "status": execution.status,
                "log": text,
            }
        )
        return
    if note:
        console.print(f"[dim]{note}[/]")
    console.print(text.rstrip() or "(the step printed nothing)", markup=False, highlight=False)


# -- artifacts and lineage -----------------------------------------------------------------
def artifact_show(artifact_id: str, *, as_json: bool) -> None:
    """``ctloop artifacts show``."""
    meta = _workspace().metadata
    artifact = meta.get_artifact(artifact_id)
    events = meta.events_of_artifact(artifact.id)
    uses = []
    for e in events:
        x = meta.get_execution(e.execution_id)
        uses.append(
            {
                "kind": e.kind,
                "name": e.name,
                "execution_id": x.id,
                "step": x.step,
                "run_id": x.run_id,
                "status": x.status,
            }
        )
    versions = [
        f"{v.name}@{v.version}" for v in meta.list_data_versions() if v.artifact_id == artifact.id
    ]
    if as_json:
        emit_json({"artifact": asdict(artifact), "events": uses, "data_versions": versions})
        return
    console.print(
        f"[bold]artifact {artifact.id}[/]  {artifact.type} ({artifact.materializer} "
        f"v{artifact.materializer_version})"
    )
    console.print(f"digest   {artifact.digest}")
    console.print(f"uri      {artifact.uri}")
    console.print(f"size     {artifact.size:,} bytes in {len(artifact.files)} file(s)")
    console.print(f"created  {when(artifact.created_at)}")
    if versions:
        console.print(f"data     {', '.join(versions)}")
    for key, value in artifact.properties.items():
        console.print(f"{key:<8} {value}", markup=False)
    for use in uses:
        verb = "written by" if use["kind"] == "output" else "read by"
        console.print(
            f"{verb} step {use['step']} ({use['status']}) of run {short(use['run_id'])}"
            f" as {use['name']}"
        )


def lineage(identifier: str, *, as_json: bool) -> None:
    """``ctloop lineage``: artifact id, run id or data NAME@VERSION."""
    from ctloop.store import _lineage as lin

    graph = _lineage_of(_workspace(), identifier, lin)
    if as_json:
        emit_json(
            {
                "roots": graph.roots,
                "nodes": [asdict(n) for n in graph.nodes.values()],
                "edges": [asdict(e) for e in graph.edges],
            }
        )
        return
    for root in graph.roots:
        tree = Tree(_node_text(graph.nodes[root]))
        _grow(tree, graph, root, set())
        console.print(tree)


def _lineage_of(workspace: Workspace, identifier: str, lin: Any) -> Any:
    meta = workspace.metadata
    if "@" in identifier:
        from ctloop.errors import ModelNotFoundError
        from ctloop.registry._lineage import model_lineage

        try:
            return model_lineage(workspace.registry, meta, identifier).graph
        except ModelNotFoundError:
            pass  # not a registered model: a data set NAME@VERSION
        from ctloop.artifacts._data_versions import resolve

        _, artifact = resolve(identifier, meta)
        return lin.upstream(meta, artifact.id)
    try:
        return lin.upstream(meta, identifier)
    except NotFoundError as artifact_error:
        try:
            return lin.run_lineage(meta, identifier)
        except NotFoundError:
            raise NotFoundError(
                f"{identifier!r} is neither an artifact nor a run id; see `ctloop runs list` "
                "or `ctloop runs show RUN` for ids"
            ) from artifact_error


def _grow(tree: Tree, graph: Any, node_id: str, seen: set[str]) -> None:
    if node_id in seen:
        return
    seen.add(node_id)
    for edge, parent in graph.parents(node_id):
        label = _node_text(parent)
        if parent.kind == "artifact":
            label = f"[dim]{edge.name} ←[/] " + label
        branch = tree.add(label)
        _grow(branch, graph, parent.id, seen)


def _node_text(node: Any) -> str:
    d = node.details
    if node.kind == "artifact":
        extra = f" {', '.join(d['data_versions'])}" if d.get("data_versions") else ""
        return f"[cyan]{node.label}[/] {short(node.id)} ({d['type']}, sha256 {d['digest'][:12]}){extra}"
    params = ", ".join(f"{k}={v}" for k, v in (d.get("parameters") or {}).items())
    git = d.get("git_commit") or "-"
    if len(git) > 12:
        git = git[:12] + ("-dirty" if git.endswith("-dirty") else "")
    text = (
        f"[bold]{escape(node.label)}[/] step of run {short(d['run_id'])} "
        f"({escape(d['pipeline'])}, code {short(d['code_hash'])}, git {git})"
    )
    return text + (" " + escape(f"[{params}]") if params else "")


# -- data versions -------------------------------------------------------------------------
def data_add(
    name: str, path: Path, message: str, *, follow_links: bool = False, as_json: bool
) -> None:
    """``ctloop data add``."""
    from ctloop.artifacts._data_versions import add_data_version
    from ctloop.config import Settings

    settings = Settings.load()
    workspace = _workspace(settings)
    added = add_data_version(
        name,
        path,
        metadata=workspace.metadata,
        artifacts=workspace.artifacts,
        staging_root=settings.home / "tmp",
        message=message,
        follow_links=follow_links,
    )
    v = added.version
    if as_json:
        emit_json(
            {
                "name": v.name,
                "version": v.version,
                "artifact_id": v.artifact_id,
                "digest": added.artifact.digest,
                "unchanged": added.unchanged,
                "files": len(added.artifact.files),
                "size": added.artifact.size,
            }
        )
        return
    if added.unchanged:
        console.print(f"{name}@{v.version} already holds exactly these files; no new version")
    else:
        console.print(
            f"added [bold]{name}@{v.version}[/] ({len(added.artifact.files)} file(s), "
            f"{added.artifact.size:,} bytes, digest {added.artifact.digest[:12]})"
        )


def data_versions(name: str | None, *, as_json: bool) -> None:
    """``ctloop data versions``."""
    meta = _workspace().metadata
    versions = meta.list_data_versions(name)
    if name and not versions:
        raise NotFoundError(
            f"no data set named {name!r}; add one with `ctloop data add {name} PATH`"
        )
    artifacts = {a.id: a for a in meta.list_artifacts([v.artifact_id for v in versions])}
    if as_json:
        emit_json(
            [
                {
                    **asdict(v),
                    "digest": artifacts[v.artifact_id].digest,
                    "size": artifacts[v.artifact_id].size,
                    "files": len(artifacts[v.artifact_id].files),
                }
                for v in versions
            ]
        )
        return
    table = Table(show_edge=False, box=None)
    for col in ("data", "version", "created", "files", "size", "digest", "source", "message"):
        table.add_column(col)
    for v in versions:
        a = artifacts[v.artifact_id]
        table.add_row(
            v.name,
            str(v.version),
            when(v.created_at),
            str(len(a.files)),
            f"{a.size:,}",
            a.digest[:12],
            v.source,
            v.message,
        )
    console.print(table if versions else "no data versions yet: `ctloop data add NAME PATH`")


def data_get(ref: str, dest: Path, *, as_json: bool) -> None:
    """``ctloop data get``."""
    from ctloop.artifacts._data_versions import get_data_version
    from ctloop.config import Settings

    if dest.exists() and not dest.is_dir():
        raise DataVersionError(
            f"cannot write {ref} into {str(dest)!r}: it is an existing file, not a folder; "
            "pass a folder (a missing one is created) or remove the file"
        )
    settings = Settings.load()
    workspace = _workspace(settings)
    try:
        written = get_data_version(
            ref,
            dest,
            metadata=workspace.metadata,
            artifacts=workspace.artifacts,
            cache_dir=settings.home / "cache",
        )
    except OSError as exc:  # a file where the snapshot has a folder, no permission, ...
        where = exc.filename or dest
        raise DataVersionError(
            f"cannot write {ref} into {str(dest)!r}: writing {str(where)!r} failed "
            f"({exc.strerror or exc}); remove what is in the way or pass another folder"
        ) from exc
    if as_json:
        emit_json({"ref": ref, "path": str(written)})
    else:
        console.print(f"wrote {ref} to {written}")


# -- gc ------------------------------------------------------------------------------------
def gc(
    *, older_than: str | None, keep_last: int | None, dry_run: bool, grace: str, as_json: bool
) -> None:
    """``ctloop gc``."""
    from ctloop.durations import parse_duration
    from ctloop.store._gc import collect_garbage

    age = parse_duration(older_than, "--older-than", error=ParameterError) if older_than else None
    grace_age = parse_duration(grace, "--grace", error=ParameterError)
    if keep_last is not None and keep_last < 0:
        raise ParameterError(f"--keep-last must be ≥ 0, got {keep_last}")
    workspace = _workspace(reconcile=True)
    report = collect_garbage(
        workspace.metadata,
        workspace.artifacts,
        older_than=age,
        keep_last=keep_last,
        grace=grace_age,
        dry_run=dry_run,
    )
    if as_json:
        emit_json(asdict(report))
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        f"{verb} {len(report.runs_deleted)} run(s), {report.artifacts_deleted} "
        f"artifact(s), {report.blobs_deleted} blob(s); "
        f"{'would free' if dry_run else 'freed'} {report.bytes_freed:,} bytes; "
        f"{report.runs_kept} run(s) kept"
    )


__all__ = ["CtloopError"]
