"""The JSON codec of the workspace protocol: store records and the values they hold.

Plain JSON values pass as they are; everything else is a one-key object whose key says
what it is: ``{"$dt": "2024-05-01T12:00:00+00:00"}``, ``{"$td": 1.5}`` (seconds),
``{"$b": base64}``, ``{"$t": [...]}`` (a tuple), ``{"$set": [...]}``, ``{"$f": "nan"}``,
``{"$map": [[key, value], ...]}`` (a dict whose keys are not all strings), and
``{"$r": "module:Name", "v": {...}}`` for a record: a dataclass, a named tuple or an
enum. Only classes defined in ``ctloop.store`` decode, so a request can never make the
other side import or build anything else.

>>> from ctloop.store.records import ParamRecord
>>> decode(encode(ParamRecord("r1", "lr", "0.1")))
ParamRecord(run_id='r1', key='lr', value='0.1', execution_id=None)
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import importlib
import math
from datetime import datetime, timedelta
from typing import Any

from ctloop._moved import current_module

__all__ = ["CodecError", "decode", "encode"]

_ALLOWED_MODULE = "ctloop.store"


class CodecError(ValueError):
    """A value the protocol cannot carry, or a body that is not one of its values."""


def encode(value: Any) -> Any:
    """``value`` as plain JSON values (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, enum.Enum):
        return {"$r": _name_of(type(value)), "v": encode(value.value)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$r": _name_of(type(value)), "v": fields}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        fields = {k: encode(v) for k, v in value._asdict().items()}  # type: ignore[attr-defined]
        return {"$r": _name_of(type(value)), "v": fields}
    return _encode_builtin(value)


def _encode_builtin(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, tuple):
        return {"$t": [encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$set": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"$map": [[encode(k), encode(v)] for k, v in value.items()]}
    if hasattr(value, "__iter__") and not isinstance(value, str):
        return [encode(v) for v in value]  # generators and other iterables travel as lists
    raise CodecError(f"a value of type {type(value).__name__} cannot be sent to a ctloop server")


def decode(value: Any) -> Any:
    """The value that :func:`encode` turned into ``value``."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag in _TAGGED:
            return _TAGGED[tag](inner)
    if set(value) == {"$r", "v"}:
        return _decode_record(value["$r"], value["v"])
    return {k: decode(v) for k, v in value.items()}


def _decode_record(name: Any, fields: Any) -> Any:
    cls = _class_named(name)
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return cls(decode(fields))
    if not isinstance(fields, dict):
        raise CodecError(f"record {name!r} must carry an object of fields, got {fields!r}")
    values = {k: decode(v) for k, v in fields.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise CodecError(
            f"record {name!r} cannot be built from fields {sorted(values)}: {exc}"
        ) from exc


def _class_named(name: Any) -> Any:
    module_name, _, qualname = str(name).partition(":")
    inside = module_name == _ALLOWED_MODULE or module_name.startswith(_ALLOWED_MODULE + ".")
    if not inside or not qualname.isidentifier():
        raise CodecError(f"record type {name!r} is not one of ctloop.store's records")
    try:
        cls = getattr(importlib.import_module(current_module(module_name)), qualname)
    except (ImportError, AttributeError) as exc:
        raise CodecError(f"record type {name!r} is not known here: {exc}") from exc
    is_record = dataclasses.is_dataclass(cls) or hasattr(cls, "_fields")
    if not (is_record or (isinstance(cls, type) and issubclass(cls, enum.Enum))):
        raise CodecError(f"{name!r} is not a record type")
    return cls


def _name_of(cls: type) -> str:
    if not cls.__module__.startswith(_ALLOWED_MODULE):
        raise CodecError(f"a {cls.__name__} is not a ctloop.store record and cannot be sent")
    return f"{cls.__module__}:{cls.__qualname__}"


def _datetime(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def _map(pairs: Any) -> dict[Any, Any]:
    return {_hashable(decode(k)): decode(v) for k, v in pairs}


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


_TAGGED: dict[str, Any] = {
    "$dt": _datetime,
    "$td": lambda seconds: timedelta(seconds=float(seconds)),
    "$b": lambda text: base64.b64decode(str(text)),
    "$t": lambda items: tuple(decode(v) for v in items),
    "$set": lambda items: {_hashable(decode(v)) for v in items},
    "$f": lambda text: float(str(text)),
    "$map": _map,
}
