"""Each subpackage exports exactly its ``__all__`` (httpx's exported-members test, on
``vars()``: ``dir()`` would answer ``__all__`` anyway), and every exported name is
documented. Names reached lazily through a package's ``__getattr__`` count as exported
once they resolve."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = [
    "artifacts",
    "artifacts.model",
    "backtest",
    "bundle",
    "cli",
    "components",
    "data",
    "demo",
    "evaluate",
    "features",
    "ingest",
    "monitor",
    "pages",
    "pipeline",
    "registry",
    "replay",
    "serve",
    "server",
    "store",
    "store.memory",
    "store.registry",
    "templates",
    "testing",
    "train",
    "triggers",
    "workers",
]

LEAK_CHECK = """
import importlib, sys, types
package = importlib.import_module(sys.argv[1])
print(" ".join(
    name for name, value in vars(package).items()
    if not name.startswith("_") and not isinstance(value, types.ModuleType)
    and name != "annotations"
))
"""


@pytest.mark.parametrize("name", PACKAGES)
def test_a_fresh_import_leaks_no_name_outside_all(name: str) -> None:
    package = f"ctloop.{name}"
    found = subprocess.run(
        [sys.executable, "-c", LEAK_CHECK, package], capture_output=True, text=True, check=True
    ).stdout.split()
    exported = set(getattr(importlib.import_module(package), "__all__", ()))
    leaked = sorted(set(found) - exported)
    assert not leaked, f"{package} exports {leaked} by accident (not in its __all__)"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves_and_is_documented(name: str) -> None:
    package = importlib.import_module(f"ctloop.{name}")
    undocumented = []
    for member in getattr(package, "__all__", ()):
        value = getattr(package, member)  # raises for a name that does not resolve
        documentable = inspect.isclass(value) or inspect.isfunction(value)
        if documentable and not (value.__doc__ or "").strip():
            undocumented.append(member)
    assert not undocumented, f"ctloop.{name} exports undocumented {undocumented}"


# Modules that stay public, each imported by path by users; every other module of a
# package is private (``_name.py``) and its public names are re-exported by the package.
PUBLIC_MODULES = {
    "artifacts": {"model", "model_versions", "records", "sklearn_skops"},
    "artifacts.model": {"infra"},
    "components": {"training"},
    "pipeline": {"tracking"},
    "store": {
        "artifact_store",
        "compare",
        "memory",
        "metadata",
        "migrations",
        "records",
        "registry",
        "statuses",
        "workspace",
    },
    "testing": {"plugin"},
}


@pytest.mark.parametrize("name", [name for name in PACKAGES if name != "cli"])
def test_implementation_modules_are_private(name: str) -> None:
    package = importlib.import_module(f"ctloop.{name}")
    public = {
        module.name
        for module in pkgutil.iter_modules(package.__path__)
        if not module.name.startswith("_")
    }
    unexpected = sorted(public - PUBLIC_MODULES.get(name, set()))
    assert not unexpected, (
        f"ctloop.{name} has public modules {unexpected}: rename them to _name.py and "
        "re-export their public names from the package, or list them in PUBLIC_MODULES"
    )
    for module in PUBLIC_MODULES.get(name, set()):
        assert module in public, f"ctloop.{name}.{module} is listed as public but missing"
