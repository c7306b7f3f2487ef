"""Fixtures of the feature store tests: the session's real redis-server."""

from __future__ import annotations

from tests.store.test_online_contract import redis_url

__all__ = ["redis_url"]
