"""Where a module comes from: the user's own code, the standard library, or an installed
distribution.

A step's code hash follows the user's own modules by their source, counts an installed
package by its distribution's name and version, and leaves the standard library out: the
library is not code the user edits, and counting it by Python version would make every
key differ between two machines of one team that run different patch releases.

A module is *installed* when its file lies under a ``site-packages`` or ``dist-packages``
folder, when the folder of ``sys.path`` that holds it also holds a ``.dist-info`` naming
it (``pip install --target``), or when it is ctloop itself (the framework counts by its
version however it was installed). An editable install of the user's own project keeps
its files outside site-packages, so its source counts: that is the code being edited.
Everything is read once per process; nothing here imports at ctloop's import time.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Literal

Kind = Literal["user", "stdlib", "installed"]

_SITE_FOLDERS = frozenset({"site-packages", "dist-packages"})


@dataclass(frozen=True)
class Origin:
    """What a module is to a cache key; ``package`` and ``folder`` say, for an installed
    module, its top-level import name and the ``sys.path`` folder that holds it."""

    kind: Kind
    package: str = ""
    folder: str = ""


_ORIGINS: dict[str, Origin] = {}


def origin_of(module: ModuleType) -> Origin:
    """The origin of ``module``, computed once per module name.

    >>> import json
    >>> origin_of(json).kind
    'stdlib'
    """
    name = module.__name__
    found = _ORIGINS.get(name)
    if found is None:
        found = _ORIGINS[name] = _classify(module)
    return found


def _classify(module: ModuleType) -> Origin:
    top = module.__name__.partition(".")[0]
    location = _location(sys.modules.get(top, module))
    folder = str(location.parent) if location is not None else ""
    if top == "ctloop":
        return Origin("installed", top, folder)
    if top in sys.builtin_module_names:
        return Origin("stdlib")
    if location is None:  # frozen, or built in memory
        return Origin("stdlib") if top in sys.stdlib_module_names else Origin("user")
    if _SITE_FOLDERS.intersection(location.parts):
        return Origin("installed", top, folder)
    if top in sys.stdlib_module_names and _under_stdlib(location):
        return Origin("stdlib")
    if _installed_in(folder, dist_info_only=True).owner(top) is not None:
        return Origin("installed", top, folder)
    return Origin("user")


def _location(module: ModuleType) -> Path | None:
    """The file of a top-level module, or the folder of a top-level package."""
    file = getattr(module, "__file__", None)
    if file:
        path = Path(file)
        return path.parent if path.stem == "__init__" else path
    paths = list(getattr(module, "__path__", None) or [])
    return Path(paths[0]) if paths else None


@cache
def _stdlib_folders() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    folders = {paths["stdlib"], paths["platstdlib"], sys.base_prefix}  # and zipped stdlib
    return tuple(sorted(os.path.join(folder, "") for folder in folders))


def _under_stdlib(path: Path) -> bool:
    return str(path).startswith(_stdlib_folders())


def distribution_pins(
    packages: Iterable[str],
    *,
    owners: Mapping[str, Sequence[str]],
    versions: Mapping[str, str],
) -> list[str]:
    """``name==version`` of the distributions that provide the top-level import names
    ``packages``, sorted and without repeats. ``owners`` maps an import name to its
    distributions (as ``importlib.metadata.packages_distributions()`` does); a name it
    does not know stands for itself. A version ``versions`` lacks reads ``unknown``.

    >>> distribution_pins(
    ...     ["sklearn", "numpy"],
    ...     owners={"sklearn": ["scikit-learn"]},
    ...     versions={"scikit-learn": "1.5.0", "numpy": "2.0.0"},
    ... )
    ['numpy==2.0.0', 'scikit-learn==1.5.0']
    """
    pins = {
        f"{canonical_name(dist)}=={versions.get(dist, 'unknown')}"
        for package in packages
        for dist in (owners.get(package) or [package])
    }
    return sorted(pins)


def canonical_name(name: str) -> str:
    """A distribution name as PyPI compares them (``Scikit_Learn`` -> ``scikit-learn``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_pins(origins: Iterable[Origin]) -> list[str]:
    """``name==version`` of the distributions behind installed modules' origins."""
    owners: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    for origin in origins:
        dist, version = _owner(origin.package, origin.folder)
        owners[origin.package] = [dist]
        versions[dist] = version
    return distribution_pins(owners, owners=owners, versions=versions)


@cache
def _owner(package: str, folder: str) -> tuple[str, str]:
    """The distribution that provides ``package`` and its version: looked for in the
    module's own folder, then in every site-packages folder, then through
    ``importlib.metadata`` (slow, so last)."""
    folders = [folder, *(p for p in sys.path if _SITE_FOLDERS.intersection(Path(p).parts))]
    for candidate in dict.fromkeys(f for f in folders if f):
        found = _installed_in(candidate, dist_info_only=False).owner(package)
        if found is not None:
            return found
    import importlib.metadata as metadata

    for dist in metadata.packages_distributions().get(package, []):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return package, "unknown"


@cache
def _installed_in(folder: str, *, dist_info_only: bool) -> _Installed:
    return _Installed(folder, dist_info_only=dist_info_only)


class _Installed:
    """The distributions installed in one folder of ``sys.path``, read as they are asked
    for: names and versions from the ``.dist-info`` folder names, then ``top_level.txt``,
    then ``RECORD`` (raw bytes, stopping at the first distribution that lists the name)."""

    def __init__(self, folder: str, *, dist_info_only: bool) -> None:
        suffixes = (".dist-info",) if dist_info_only else (".dist-info", ".egg-info")
        try:
            entries = sorted(e.name for e in os.scandir(folder) if e.name.endswith(suffixes))
        except OSError:
            entries = []
        self.folder = folder
        self.metadata_dirs = entries
        self.unread = list(entries)
        self.provides: dict[str, str] = {}  # top-level import name -> metadata folder

    def owner(self, package: str) -> tuple[str, str] | None:
        """``(distribution, version)`` providing the import name ``package``, or None."""
        if not self.metadata_dirs:
            return None
        wanted = canonical_name(package)
        for entry in self.metadata_dirs:
            if canonical_name(_split_entry(entry)[0]) == wanted:
                return self._named(entry)
        if package in self.provides:
            return self._named(self.provides[package])
        for entry in self.metadata_dirs:
            for line in (self._read(entry, "top_level.txt") or b"").decode().split():
                self.provides.setdefault(line.strip(), entry)
        if package in self.provides:
            return self._named(self.provides[package])
        needles = [b"\n" + package.encode() + sep for sep in (b"/", b".")]
        while self.unread:
            entry = self.unread.pop(0)
            record = b"\n" + (
                self._read(entry, "RECORD") or self._read(entry, "SOURCES.txt") or b""
            )
            if any(needle in record for needle in needles):
                self.provides[package] = entry
                return self._named(entry)
        return None

    def _named(self, entry: str) -> tuple[str, str]:
        name, version = _split_entry(entry)
        if not version:
            for line in (
                self._read(entry, "METADATA") or self._read(entry, "PKG-INFO") or b""
            ).split(b"\n"):
                if line.startswith(b"Version:"):
                    version = line.partition(b":")[2].strip().decode()
                    break
        return canonical_name(name), version or "unknown"

    def _read(self, entry: str, name: str) -> bytes | None:
        try:
            with open(os.path.join(self.folder, entry, name), "rb") as fh:
                return fh.read()
        except OSError:
            return None


def _split_entry(entry: str) -> tuple[str, str]:
    """``("scikit_learn", "1.5.0")`` from ``scikit_learn-1.5.0.dist-info``."""
    stem = entry.rpartition(".")[0]
    name, _, rest = stem.partition("-")
    return name, rest.partition("-")[0]
