"""Command line: ``vcoresim list | check | replay | simulate | study | swarm | litmus``.

The group is ``cli/app.py``; each command's module is imported only when
that command runs (``--help`` lists them from ``app.COMMANDS``).
``vcoresim.cli.main`` is imported from there on first use, so the entry
point (``cli/entry.py``) can take over Ctrl-C and SIGTERM before the
imports run.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("main", "COMMANDS"):
        from vcoresim.cli import app

        return getattr(app, name)
    raise AttributeError(f"module 'vcoresim.cli' has no attribute {name!r}")
