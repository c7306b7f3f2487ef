"""The code a bundled model needs besides ctloop: its Transform's module, carried in
``code/`` (or pinned in ``requirements.txt`` when an installed distribution provides it),
and any ``--code`` paths the user names.

The transform is stored with the model by reference (``module:qualname``), so the bundle
must bring the module along for the model to load where it is deployed. A module of your
project (a file next to the pipeline, or a package installed in editable mode) is copied
with the ``__init__.py`` of each package above it; a module of a distribution installed
from an index is pinned like the model's other requirements.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from ctloop.errors import ServingError

__all__ = ["CODE_DIR", "CarriedCode", "carry_code", "put_on_path"]

CODE_DIR = "code"
"""Where the carried modules go inside the bundle (on ``PYTHONPATH`` when it serves)."""


@dataclass
class CarriedCode:
    """What :func:`carry_code` did: the files it copied under ``code/`` and the
    requirement lines it adds (a distribution that provides the transform)."""

    files: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)


def carry_code(model_dir: Path, directory: Path, extra: list[Path] | None = None) -> CarriedCode:
    """Copy the transform's module of the model in ``model_dir`` (and ``extra`` files or
    folders) into ``directory/code``."""
    carried = CarriedCode()
    reference = _transform_reference(model_dir)
    if reference is not None:
        _carry_module(reference, directory / CODE_DIR, carried)
    for path in extra or []:
        _carry_path(path, directory / CODE_DIR, carried)
    carried.files = sorted(set(carried.files))
    return carried


def _transform_reference(model_dir: Path) -> str | None:
    description = model_dir / "model.json"
    if not description.is_file():
        return None
    entry = json.loads(description.read_text()).get("transform")
    if entry is None:
        return None
    return str(entry["class"] if isinstance(entry, dict) else entry)


def _carry_module(reference: str, code: Path, carried: CarriedCode) -> None:
    module = reference.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        spec, problem = None, str(exc)
    else:
        problem = "it is not importable here"
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise ServingError(
            f"the model's transform {reference} cannot be carried in the bundle: module "
            f"{module!r} is not found ({problem}); run `ctloop bundle` where it imports "
            "(PYTHONPATH or an installed package)"
        )
    origin = Path(spec.origin)
    requirement = _installed_requirement(module, origin)
    if requirement is not None:
        carried.requirements.append(requirement)
        return
    parts = module.split(".")
    is_package = origin.name == "__init__.py"
    root = origin.parents[len(parts) - (0 if is_package else 1)]
    for depth in range(1, len(parts)):  # the packages above the module
        init = root.joinpath(*parts[:depth], "__init__.py")
        if init.is_file():
            _copy(init, code / init.relative_to(root), code, carried)
    if is_package:
        _copy_tree(origin.parent, code / origin.parent.relative_to(root), code, carried)
    else:
        _copy(origin, code / origin.relative_to(root), code, carried)


def _installed_requirement(module: str, origin: Path) -> str | None:
    """``dist==version`` when ``origin`` lies in site-packages (installed from an index,
    not in editable mode), else ``None``."""
    site = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    if not any(folder in origin.resolve().parents for folder in site):
        return None
    top = module.split(".")[0]
    names = importlib.metadata.packages_distributions().get(top, [])
    if not names:
        return None
    name = names[0]
    return f"{name}=={importlib.metadata.version(name)}"


def _carry_path(path: Path, code: Path, carried: CarriedCode) -> None:
    if not path.exists():
        raise ServingError(f"--code {path} does not exist; name a Python file or a folder")
    if path.is_dir():
        _copy_tree(path, code / path.name, code, carried)
    else:
        _copy(path, code / path.name, code, carried)


def _copy_tree(source: Path, target: Path, code: Path, carried: CarriedCode) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            _copy(path, target / path.relative_to(source), code, carried)


def _copy(source: Path, target: Path, code: Path, carried: CarriedCode) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    carried.files.append(f"{CODE_DIR}/{target.relative_to(code).as_posix()}")


def put_on_path(bundle: Path) -> None:
    """Make the modules a bundle carries importable in this process and the processes
    it starts (``ctloop serve --workers``)."""
    import os

    code = bundle / CODE_DIR
    if not code.is_dir():
        return
    folder = str(code.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if folder not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([folder, *paths])
