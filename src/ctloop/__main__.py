"""``python -m ctloop`` is the ``ctloop`` command."""

from ctloop.cli import main

main()
