"""Materializers for record objects: small typed documents such as data statistics,
schemas, anomalies and drift reports.

A *record class* follows a three-part protocol, so this layer stores it without
importing it:

- a class attribute ``__ctloop_artifact__`` naming the artifact type (``"Statistics"``);
- ``to_dict()`` returning JSON-able data;
- a classmethod ``from_dict(data)`` reading it back.

A class that also has ``to_yaml()`` and a classmethod ``from_yaml(text)`` is stored as a
readable YAML file (a schema you can open and edit), every other one as JSON. The class is
named on the artifact (property ``class``, ``module:qualname``). Loading imports that
module only when it is part of ctloop, or uses a class you registered with
:func:`register_record_class`: importing a module named in stored metadata would run
whatever code it holds.

>>> class Point:
...     __ctloop_artifact__ = "Point"
...     def __init__(self, x): self.x = x
...     def to_dict(self): return {"x": self.x}
...     @classmethod
...     def from_dict(cls, data): return cls(data["x"])
>>> register_record_class(Point)  # doctest: +SKIP
>>> materializer_for(Point(1)).artifact_type  # doctest: +SKIP
'Record'
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ctloop._moved import current_module
from ctloop.artifacts._io import BytesMaterializer
from ctloop.artifacts._materializer import Materializer
from ctloop.errors import ArtifactError

__all__ = [
    "AnomaliesMaterializer",
    "DriftReportMaterializer",
    "RecordMaterializer",
    "SchemaMaterializer",
    "StatisticsMaterializer",
    "record_materializers",
    "register_record_class",
]

_TRUSTED_PACKAGE = "ctloop"
_lock = threading.Lock()
_registered: dict[str, type] = {}


def register_record_class(cls: type) -> None:
    """Allow artifacts of ``cls`` (a class outside ctloop) to be loaded.

    Call it where the class is defined, so that every process that loads such an artifact
    (a pipeline's worker processes too) has run it.

    >>> register_record_class(Point)  # doctest: +SKIP
    """
    _check_protocol(cls)
    with _lock:
        _registered[_class_name(cls)] = cls


def record_materializers() -> list[Materializer]:
    """The built-in record materializers, the named types first, then the catch-all."""
    return [
        StatisticsMaterializer(),
        SchemaMaterializer(),
        AnomaliesMaterializer(),
        DriftReportMaterializer(),
        RecordMaterializer(),
    ]


class RecordMaterializer(BytesMaterializer):
    """Any record class (see the module docstring) as one JSON or YAML file.

    This catch-all stores every record class as artifact type ``Record`` (the class's own
    type name is kept in the property ``record_type``). Subclass it to give a type of
    your own its artifact type::

        class PointMaterializer(RecordMaterializer):
            name = "myproject.point"
            artifact_type = "Point"
            record_type = "Point"

        ctloop.register_materializer(PointMaterializer())
    """

    name = "ctloop.record"
    artifact_type = "Record"
    record_type: ClassVar[str | None] = None  # None: every record class

    def can_save(self, value: Any) -> bool:
        """Whether ``value``'s class declares ``__ctloop_artifact__`` (and, for a named
        type, declares this materializer's ``record_type``)."""
        declared = getattr(type(value), "__ctloop_artifact__", None)
        if declared is None:
            return False
        return self.record_type is None or declared == self.record_type

    def to_bytes(self, value: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """One file (``<type>.yaml`` or ``<type>.json``) and the properties ``class``,
        ``record_type`` and ``file``."""
        cls = type(value)
        record_type = str(cls.__ctloop_artifact__)
        stem = _file_stem(record_type)
        if _has_yaml(cls):
            file_name, data = f"{stem}.yaml", str(value.to_yaml()).encode()
            encoding = "yaml"
        else:
            file_name = f"{stem}.json"
            data, encoding = _encode_json(value.to_dict())
        properties = {"class": _class_name(cls), "record_type": record_type, "file": file_name}
        if encoding != "json":
            properties["encoding"] = encoding
        return {file_name: data}, properties

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read the file back with the class named in the properties."""
        cls = _trusted_class(str(properties.get("class", "")))
        file_name = str(properties.get("file", ""))
        if file_name not in files:
            raise ArtifactError(
                f"the {self.artifact_type} artifact has no file {file_name!r} (it has "
                f"{sorted(files) or 'none'}); it was not written by this materializer"
            )
        text = files[file_name].read_bytes()
        encoding = properties.get("encoding", "json")
        if encoding == "yaml":
            return cls.from_yaml(text.decode())  # type: ignore[attr-defined]
        return cls.from_dict(_decode_json(text, encoding))  # type: ignore[attr-defined]


class StatisticsMaterializer(RecordMaterializer):
    """Data statistics (``ctloop.data.DatasetStatistics``) as ``statistics.json``."""

    name = "ctloop.statistics"
    artifact_type = "Statistics"
    record_type = "Statistics"


class SchemaMaterializer(RecordMaterializer):
    """A data schema (``ctloop.data.Schema``) as a readable ``schema.yaml``."""

    name = "ctloop.schema"
    artifact_type = "Schema"
    record_type = "Schema"


class AnomaliesMaterializer(RecordMaterializer):
    """Validation results (``ctloop.data.Anomalies``) as ``anomalies.json``."""

    name = "ctloop.anomalies"
    artifact_type = "Anomalies"
    record_type = "Anomalies"


class DriftReportMaterializer(RecordMaterializer):
    """A drift report (``ctloop.data.DriftReport``) as ``drift_report.json``."""

    name = "ctloop.drift_report"
    artifact_type = "DriftReport"
    record_type = "DriftReport"


def _class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _file_stem(record_type: str) -> str:
    """``DriftReport`` → ``drift_report``: a file name users recognise."""
    stem = re.sub(r"(?<!^)(?=[A-Z])", "_", record_type).lower()
    return re.sub(r"[^a-z0-9_]+", "_", stem).strip("_") or "record"


def _has_yaml(cls: type) -> bool:
    return callable(getattr(cls, "to_yaml", None)) and callable(getattr(cls, "from_yaml", None))


def _check_protocol(cls: Any) -> None:
    missing = [
        attribute
        for attribute in ("__ctloop_artifact__", "to_dict", "from_dict")
        if not hasattr(cls, attribute)
    ]
    if not isinstance(cls, type) or missing:
        raise ArtifactError(
            f"{cls!r} is not a record class: it lacks {missing or 'being a class'}; give the "
            "class a __ctloop_artifact__ type name, a to_dict() method and a from_dict() "
            "classmethod"
        )


def _trusted_class(name: str) -> type:
    """The class ``module:qualname``, if it is ctloop's own or registered by the user."""
    registered = _registered.get(name)
    if registered is not None:
        return registered
    module_name, _, qualname = name.partition(":")
    inside = module_name == _TRUSTED_PACKAGE or module_name.startswith(_TRUSTED_PACKAGE + ".")
    if not inside or not qualname:
        raise ArtifactError(
            f"the artifact was saved from class {name!r}, which is neither part of ctloop "
            "nor registered, so it is not imported (that would run code named by stored "
            "metadata); if you trust it, import its module and call "
            "ctloop.artifacts.records.register_record_class(TheClass) before loading"
        )
    found: Any = importlib.import_module(current_module(module_name))
    for part in qualname.split("."):
        found = getattr(found, part, None)
    _check_protocol(found)
    assert isinstance(found, type)
    return found


def _encode_json(data: Any) -> tuple[bytes, str]:
    """JSON bytes (orjson) and the encoding; non-finite floats need Python's ``json``."""
    from ctloop.artifacts._builtin import JsonMaterializer

    files, properties = JsonMaterializer().to_bytes(data)
    return files["value.json"], str(properties.get("encoding", "json"))


def _decode_json(data: bytes, encoding: Any) -> Any:
    if encoding == "python":
        import json

        return json.loads(data)
    import orjson

    return orjson.loads(data)
