"""Tests of ctloop.evaluate."""
