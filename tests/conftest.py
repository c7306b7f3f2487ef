"""Shared test fixtures; backends' servers live in tests/fixtures/."""

from __future__ import annotations

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.s3"]
