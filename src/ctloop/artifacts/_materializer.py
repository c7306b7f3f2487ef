"""The materializer interface: how a Python value becomes files and back.

A materializer writes a value into an empty local folder (one or more files) and
reads it back from a mapping of file name to local path. The artifact layer then
stores each file as a content-addressed blob. Error contract:

- ``save`` raises :class:`~ctloop.errors.ArtifactError` naming the value's type when
  the value cannot be written; it writes only inside ``directory``;
- ``load`` raises :class:`~ctloop.errors.ArtifactError` naming the artifact type and
  the missing file when the files are not what it wrote;
- ``version`` changes whenever the on-disk format changes (it is part of cache keys).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar


class Materializer(ABC):
    """Saves values of some Python types as files of one artifact type.

    ``handles`` names the types by their fully qualified class name (``module.QualName``,
    as in ``type(value).__module__ + "." + type(value).__qualname__``), matched against
    the value's MRO, so that checking a value never imports pandas or scikit-learn.

    Example, a materializer for a user's own class::

        class PointMaterializer(Materializer):
            name = "myproject.Point"
            artifact_type = "Point"
            handles = ("myproject.geometry.Point",)

            def save(self, value, directory):
                (directory / "point.json").write_text(json.dumps([value.x, value.y]))
                return {}

            def load(self, files, properties):
                return Point(*json.loads(files["point.json"].read_text()))

        ctloop.register_materializer(PointMaterializer())
    """

    name: ClassVar[str]
    artifact_type: ClassVar[str]
    version: ClassVar[str] = "1"
    handles: ClassVar[tuple[str, ...]] = ()

    def can_save(self, value: Any) -> bool:
        """Whether this materializer handles ``value`` (by default: by ``handles``)."""
        names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(value).__mro__}
        return any(name in names for name in self.handles)

    @abstractmethod
    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write ``value`` as files into the empty folder ``directory``; return JSON
        properties to keep on the artifact record (rows, columns, shape, …)."""

    @abstractmethod
    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read the value back from its files (file name → local, read-only path)."""
