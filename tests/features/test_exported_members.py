"""``ctloop.features`` exports exactly its ``__all__``; implementation modules stay private."""

from __future__ import annotations

import types

import ctloop.features


def test_the_package_exports_exactly_its_all() -> None:
    public = {
        name
        for name, value in vars(ctloop.features).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public == set(ctloop.features.__all__)
    assert all(getattr(ctloop.features, name).__doc__ for name in ctloop.features.__all__)
