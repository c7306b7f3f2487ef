"""The Open Inference Protocol (KServe V2) endpoints, as Triton's clients call them.

- ``GET /v2``, ``/v2/health/live``, ``/v2/health/ready``: server metadata and health;
- ``GET /v2/models/{name}[/versions/{v}]`` with ``/ready``, ``/config``, ``/stats``: the
  model's metadata, readiness, configuration (Triton's ``model_config`` form) and
  inference statistics; ``GET /v2/models/stats`` for every model;
- ``POST /v2/repository/index``: the served versions;
- ``POST /v2/models/{name}[/versions/{v}]/infer``: inference, with JSON or binary tensors
  (:mod:`ctloop.serve._v2_binary`), gzip or deflate bodies, and compressed answers.

Every error under ``/v2`` is ``{"error": sentence}`` (with ``"field"`` when one part of
the request is at fault), the form Triton's clients read, including unknown endpoints
and wrong methods.

>>> add_v2_routes(app, state)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from ctloop.errors import PredictionRequestError
from ctloop.serve import _protocols as protocols
from ctloop.serve import _v2_binary as v2_binary
from ctloop.serve._answers import Answer, answered, plain, read_request
from ctloop.serve._event_time import EVENT_TIME_HEADER, with_event_times
from ctloop.serve._openapi import V2_BODY
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from ctloop.artifacts.model import Model
    from ctloop.serve._app import ServerState
    from ctloop.serve._core import Prediction
    from ctloop.serve._pool import ModelPool
    from ctloop.serve._statistics import Duration, VersionStatistics

__all__ = ["EXTENSIONS", "add_v2_routes"]

EXTENSIONS = ["binary_tensor_data", "model_configuration", "statistics"]
"""The protocol extensions this server implements, as ``GET /v2`` reports them."""

_CONFIG_TYPES = {"BYTES": "TYPE_STRING"}
"""Model-configuration type names that are not ``TYPE_`` + the tensor type."""


def add_v2_routes(app: FastAPI, state: ServerState) -> None:
    """Serve the V2 endpoints of ``state``'s model on ``app``: server metadata and health
    open to anyone, the model's endpoints needing a viewer key under ``--auth``."""
    probes = state.router(None)
    _add_health_routes(probes, state)
    models = state.router(Role.VIEWER)
    _add_index_route(models, state)
    _add_model_routes(models, state)
    _add_infer_routes(models, state)
    app.include_router(probes)
    app.include_router(models)


def _check_model(pool: ModelPool, name: str) -> None:
    if name != pool.name:
        raise PredictionRequestError(
            f"model {name!r} is not served here; this server serves {pool.name!r}",
            status=404,
            field="model_name",
        )
    if not pool.ready:
        raise PredictionRequestError(
            f"model {name!r} is still loading; retry when /v2/health/ready says ready",
            status=503,
            field="model_name",
        )


def _served_version(pool: ModelPool, name: str, version: str | None) -> int | None:
    """The version number asked for (``None`` for the model as a whole), once checked."""
    _check_model(pool, name)
    if version is None:
        return None
    served = pool.versions
    if not version.isdigit() or int(version) not in served:
        listed = ", ".join(str(v) for v in served)
        raise PredictionRequestError(
            f"version {version} of model {name!r} is not served here; this server serves "
            f"version(s) {listed}",
            status=404,
            field="model_version",
        )
    return int(version)


def _model(pool: ModelPool, version: int | None) -> Model:
    r = pool.routing
    if r.canary is not None and version == r.canary.version:
        return r.canary.model
    return r.primary.model


# -- health and model documents -----------------------------------------------------------


def _add_health_routes(router: APIRouter, state: ServerState) -> None:
    from ctloop._version import __version__

    pool = state.pool

    @router.get("/v2", summary="Server metadata (KServe V2)")
    async def v2_server() -> Response:
        return plain({"name": "ctloop", "version": __version__, "extensions": EXTENSIONS})

    @router.get("/v2/health/live", summary="Liveness (KServe V2)")
    async def v2_live() -> Response:
        return plain({"live": True})

    @router.get("/v2/health/ready", summary="Readiness (KServe V2)")
    async def v2_ready() -> Response:
        return plain({"ready": pool.ready}, 200 if pool.ready else 503)


def _add_index_route(router: APIRouter, state: ServerState) -> None:
    pool = state.pool

    @router.post("/v2/repository/index", summary="Served model versions (KServe V2)")
    async def v2_index(request: Request) -> Response:
        _check_index_request(await request.body())
        # every version listed is ready (one still loading is not routed to), so the
        # request's "ready" filter changes nothing
        versions = pool.versions if pool.ready else []
        return plain([{"name": pool.name, "version": str(v), "state": "READY"} for v in versions])


def _check_index_request(body: bytes) -> None:
    """A repository-index request is empty or ``{"ready": true|false}``."""
    if not body.strip():
        return
    document = protocols.decode_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("ready", False), bool):
        raise PredictionRequestError(
            'the repository index request must be empty or {"ready": true|false}',
            field="ready",
        )


def _add_model_routes(router: APIRouter, state: ServerState) -> None:
    pool = state.pool

    # before /v2/models/{model_name}, which would take "stats" for a model name
    @router.get("/v2/models/stats", summary="Inference statistics of every model (KServe V2)")
    async def v2_all_stats() -> Response:
        return plain({"model_stats": _statistics(state, None) if pool.ready else []})

    def metadata(model_name: str, version: str | None) -> Response:
        number = _served_version(pool, model_name, version)
        return plain(model_metadata(pool, _model(pool, number)))

    def ready(model_name: str, version: str | None) -> Response:
        if model_name == pool.name and not pool.ready:
            return plain({"name": pool.name, "ready": False}, 503)
        _served_version(pool, model_name, version)
        return plain({"name": pool.name, "ready": True})

    def config(model_name: str, version: str | None) -> Response:
        number = _served_version(pool, model_name, version)
        return plain(_config(pool, _model(pool, number)))

    def stats(model_name: str, version: str | None) -> Response:
        number = _served_version(pool, model_name, version)
        return plain({"model_stats": _statistics(state, number)})

    _add_model_document(router, "", "Model metadata", metadata)
    _add_model_document(router, "/ready", "Model readiness", ready)
    _add_model_document(router, "/config", "Model configuration", config)
    _add_model_document(router, "/stats", "Inference statistics", stats)


def _add_model_document(
    router: APIRouter, path: str, title: str, document: Callable[[str, str | None], Response]
) -> None:
    """``GET /v2/models/{model_name}<path>`` and the same for one version."""

    async def whole(model_name: str) -> Response:
        return document(model_name, None)

    async def one(model_name: str, version: str) -> Response:
        return document(model_name, version)

    name = title.lower().replace(" ", "_")
    router.add_api_route(
        "/v2/models/{model_name}" + path, whole, name=name, summary=f"{title} (KServe V2)"
    )
    router.add_api_route(
        "/v2/models/{model_name}/versions/{version}" + path,
        one,
        name=f"{name}_of_version",
        summary=f"{title} of one version (KServe V2)",
    )


def _config(pool: ModelPool, model: Model) -> dict[str, Any]:
    """The model's configuration in Triton's form: one variable-length tensor per column
    (``max_batch_size`` 0: the row count is the first dimension of every tensor)."""
    metadata = model_metadata(pool, model)

    def tensors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"name": t["name"], "data_type": _config_type(t["datatype"]), "dims": t["shape"]}
            for t in entries
        ]

    return {
        "name": pool.name,
        "platform": metadata["platform"],
        "backend": "ctloop",
        "version_policy": {"specific": {"versions": pool.versions}},
        "max_batch_size": 0,
        "input": tensors(metadata["inputs"]),
        "output": tensors(metadata["outputs"]),
        "parameters": {"flavor": {"string_value": model.flavor}},
    }


def model_metadata(pool: ModelPool, model: Model) -> dict[str, Any]:
    """The V2 model metadata of ``model``: its signature's columns and its prediction,
    or, with a transform, the raw fields and outputs the transform declares; a transform
    that declares none has no listed inputs or outputs and says so in ``parameters``."""
    if model.transform is None:
        return protocols.v2_model_metadata(pool.name, pool.versions, model.signature)
    declared = model.transform_signature
    if declared is None:
        from ctloop.artifacts.model import Signature

        metadata = protocols.v2_model_metadata(pool.name, pool.versions, Signature(()))
        metadata["outputs"] = []
        metadata["parameters"] = {
            "inputs": "any: the model's transform reads the fields it needs",
            "outputs": "the model's transform names them",
        }
        return metadata
    metadata = protocols.v2_model_metadata(pool.name, pool.versions, declared)
    metadata["outputs"] = [
        {"name": c.name, "datatype": protocols.V2_DATATYPES[c.type], "shape": [-1]}
        for c in declared.outputs
    ]
    return metadata


def _config_type(datatype: str) -> str:
    return _CONFIG_TYPES.get(datatype, f"TYPE_{datatype}")


def _statistics(state: ServerState, version: int | None) -> list[dict[str, Any]]:
    """The statistics of the served versions (and of versions served earlier), or of
    one version."""
    from ctloop.serve._statistics import VersionStatistics

    counted = state.service.statistics.snapshot()
    numbers = sorted(set(state.pool.versions) | set(counted))
    if version is not None:
        numbers = [version]
    return [
        _version_statistics(state.pool.name, n, counted.get(n, VersionStatistics()))
        for n in numbers
    ]


def _version_statistics(name: str, version: int, s: VersionStatistics) -> dict[str, Any]:
    def duration(d: Duration) -> dict[str, int]:
        return {"count": d.count, "ns": d.ns}

    return {
        "name": name,
        "version": str(version),
        "last_inference": s.last_inference_ms,
        "inference_count": s.inference_count,
        "execution_count": s.execution_count,
        "inference_stats": {
            "success": duration(s.success),
            "fail": duration(s.fail),
            "compute_infer": duration(s.compute_infer),
        },
    }


# -- inference ----------------------------------------------------------------------------


def _add_infer_routes(router: APIRouter, state: ServerState) -> None:
    pool, service = state.pool, state.service
    limit = state.config.max_body_bytes

    async def infer(request: Request, model_name: str, version: str | None) -> Response:
        body = await read_request(request, "v2", limit)
        _check_model(pool, model_name)
        if version is not None:
            _check_routed(pool, version)
        headers = request.headers
        body = v2_binary.decompress(body, headers.get("content-encoding"), limit)
        parsed = protocols.parse_v2(body, header_length=headers.get(v2_binary.HEADER_LENGTH))
        primary = pool.routing.primary.model
        signature = primary.signature
        if primary.transform is None:  # with one, the tensors are the transform's input
            parsed.check_datatypes(signature)
        header = headers.get(EVENT_TIME_HEADER)
        parsed = with_event_times(parsed, header, signature.input_names)
        p = await service.predict(parsed, parsed.request_id or request.state.request_id)
        answer = _inference_answer(pool.name, p, parsed, headers.get("accept-encoding"))
        return answered(state.metrics, request, answer)

    @router.post(
        "/v2/models/{model_name}/infer", openapi_extra=V2_BODY, summary="Infer (KServe V2)"
    )
    async def v2_infer(model_name: str, request: Request) -> Response:
        return await infer(request, model_name, None)

    @router.post(
        "/v2/models/{model_name}/versions/{version}/infer",
        openapi_extra=V2_BODY,
        summary="Infer with one version (KServe V2)",
    )
    async def v2_infer_version(model_name: str, version: str, request: Request) -> Response:
        return await infer(request, model_name, version)


def _check_routed(pool: ModelPool, version: str) -> None:
    """A request for one version is answered only when that version answers every
    request (no canary shares the traffic)."""
    served = pool.versions
    if version.isdigit() and [int(version)] == served:
        return
    listed = ", ".join(str(v) for v in served)
    raise PredictionRequestError(
        f"version {version} of model {pool.name!r} cannot be asked for by number: this "
        f"server routes each request between version(s) {listed}; send it to "
        f"/v2/models/{pool.name}/infer",
        status=404,
        field="model_version",
    )


def _inference_answer(
    model: str, p: Prediction, parsed: protocols.V2Request, accept_encoding: str | None
) -> Answer:
    """The answer to an inference request: JSON, or the JSON document followed by the
    binary tensor when asked; compressed when the client accepts it."""
    headers: dict[str, str] = {}
    media_type = "application/json"
    if parsed.binary_outputs:
        document, raw = protocols.encode_v2_binary(
            model, p.version, p.request_id, p.predictions, p.outputs
        )
        header = orjson.dumps(document)
        body = header + raw
        headers[v2_binary.HEADER_LENGTH] = str(len(header))
        media_type = "application/octet-stream"
    else:
        document = protocols.encode_v2(model, p.version, p.request_id, p.predictions, p.outputs)
        body = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    body, encoding = v2_binary.compress(body, accept_encoding)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return Answer(
        document, p.version, p.follow_up, body=body, headers=headers, media_type=media_type
    )
