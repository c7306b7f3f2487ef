"""The ``ctloop`` command (Typer + Rich); heavy parts load only when a command runs."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``ctloop`` console script."""
    from ctloop.cli.app import run_app

    run_app()


__all__ = ["main"]
