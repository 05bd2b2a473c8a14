"""Command line: ``vcoresim list | check | replay | simulate | study | swarm | litmus``.

The group is ``cli/app.py`` (one module per command); ``vcoresim.cli.main``
is imported from there on first use, so the entry point (``cli/entry.py``)
can take over Ctrl-C and SIGTERM before the heavy imports run.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "main":
        from vcoresim.cli.app import main

        return main
    raise AttributeError(f"module 'vcoresim.cli' has no attribute {name!r}")
