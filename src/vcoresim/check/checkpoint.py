"""Checkpoints: the state of an interrupted search, as JSON, to continue it.

A checkpoint is written when a budget (``--max-executions``,
``--max-seconds``) or Ctrl-C ends a search before it covered its bounds.  It
holds the scenario and its effective config (like a trace), the strategy,
seed and bounds, the statistics so far and the DPOR search state: the
current path's schedule and, per node, the enabled actors, their footprints,
the backtrack set, what was explored and the sleep set.  ``vcoresim check
--resume FILE`` replays the path and continues; the result is the one an
uninterrupted run gives (same verdict, same executions, states and steps).
Not saved: the state cache's visited set (fingerprints are process-local
hashes), so a resumed ``--cache`` run re-explores what the cache would
have pruned (same verdict, more work).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "vcoresim-checkpoint"
VERSION = 1


class CheckpointError(Exception):
    """A checkpoint file that cannot be used."""


def write_checkpoint(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "version": VERSION, **doc}, separators=(",", ":")))
    tmp.replace(path)  # never a half-written checkpoint


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not JSON (truncated?): {e.msg} at line {e.lineno}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format: not a vcoresim checkpoint")
    if doc.get("version") != VERSION:
        raise CheckpointError(f"{path}: version: {doc.get('version')!r} is not supported (expected {VERSION})")
    for key in ("scenario", "config", "strategy", "bounds", "state"):
        if key not in doc:
            raise CheckpointError(f"{path}: {key}: missing")
    return doc
