"""MLflow's search filters and orderings, the part of their grammar clients use:
clauses ``KIND.KEY OP VALUE`` joined by ``AND``, ``OP`` one of ``= != < <= > >= LIKE
ILIKE IN``, keys optionally in backticks, strings in quotes.

>>> parse_filter("metrics.auc > 0.8 and params.`max depth` = '3'")
[('metrics', 'auc', '>', 0.8), ('params', 'max depth', '=', '3')]
>>> matches(parse_filter("name LIKE 'fl%'"), lambda kind, key: "flights")
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from ctloop.server._mlflow._protocol import MlflowError

__all__ = ["Clause", "matches", "parse_filter", "parse_order"]

Clause = tuple[str, str, str, Any]

_CLAUSE = re.compile(
    r"""\s*(?:(?P<kind>[A-Za-z_]+)\.)?(?P<key>`[^`]+`|"[^"]+"|[A-Za-z_][\w.\-]*)\s*
    (?P<op>!=|>=|<=|=|>|<|\bNOT\s+ILIKE\b|\bNOT\s+LIKE\b|\bILIKE\b|\bLIKE\b|\bIN\b)\s*
    (?P<value>'(?:[^']|'')*'|"[^"]*"|\([^)]*\)|-?[\d.]+(?:[eE][-+]?\d+)?)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_KINDS = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}


def parse_filter(text: str | None) -> list[Clause]:
    """The clauses of a filter string (empty for none)."""
    if not text or not text.strip():
        return []
    clauses: list[Clause] = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        found = _CLAUSE.fullmatch(part)
        if found is None:
            raise MlflowError.invalid(
                f"cannot read the filter clause {part!r}; write e.g. "
                "\"metrics.auc > 0.8 AND params.depth = '3'\""
            )
        kind = _KINDS.get((found["kind"] or "attributes").lower())
        if kind is None:
            raise MlflowError.invalid(
                f"unknown entity {found['kind']!r} in the filter clause {part!r}; "
                "use metrics., params., tags. or attributes."
            )
        key = found["key"].strip('`"')
        clauses.append((kind, key, " ".join(found["op"].upper().split()), _value(found["value"])))
    return clauses


def _value(raw: str) -> Any:
    if raw.startswith("("):
        return [_value(v.strip()) for v in raw[1:-1].split(",") if v.strip()]
    if raw[0] in "'\"":
        return raw[1:-1].replace("''", "'")
    return float(raw)


def matches(clauses: list[Clause], value_of: Callable[[str, str], Any]) -> bool:
    """Whether every clause holds; ``value_of(kind, key)`` is the entity's value
    (``None`` when it has none: such an entity never matches)."""
    for kind, key, op, wanted in clauses:
        have = value_of(kind, key)
        if have is None or not _holds(have, op, wanted):
            return False
    return True


def _holds(have: Any, op: str, wanted: Any) -> bool:
    if op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        pattern = "".join(
            ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(wanted)
        )
        flags = re.IGNORECASE if "ILIKE" in op else 0
        found = re.fullmatch(pattern, str(have), flags | re.DOTALL) is not None
        return found != op.startswith("NOT")
    if op == "IN":
        return str(have) in {str(v) for v in wanted}
    if isinstance(wanted, float):
        try:
            have = float(have)
        except (TypeError, ValueError):
            return False
        if math.isnan(have):  # a NaN metric matches no comparison (a NULL in SQL)
            return False
    else:
        have = str(have)
    if op == "=":
        return bool(have == wanted)
    if op == "!=":
        return bool(have != wanted)
    try:
        return bool(
            {"<": have < wanted, "<=": have <= wanted, ">": have > wanted, ">=": have >= wanted}[op]
        )
    except TypeError:
        return False


def parse_order(items: list[str] | str | None) -> list[tuple[str, str, bool]]:
    """``(kind, key, ascending)`` of each ``order_by`` item, e.g. ``metrics.auc DESC``."""
    if items is None:
        return []
    found = []
    for item in [items] if isinstance(items, str) else items:
        words = item.strip().rsplit(" ", 1)
        ascending = True
        if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
            ascending = words[1].upper() == "ASC"
            item = words[0]
        kind, dot, key = item.strip().partition(".")
        if not dot:
            kind, key = "attributes", kind
        if kind.lower() not in _KINDS:
            raise MlflowError.invalid(f"cannot order by {item!r}; use e.g. 'metrics.auc DESC'")
        found.append((_KINDS[kind.lower()], key.strip('`"'), ascending))
    return found
