"""The pictures ``vcoresim replay`` and ``vcoresim simulate`` write (the CLI's entry points)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcoresim.report import perfetto, timeline


def write_perfetto_replay(res: Any, path: Path) -> None:
    """A replayed trace (``check.driver.replay``'s outcome) as a Perfetto timeline, 1 µs per step."""
    perfetto.write(timeline.from_execution(res.execution, f"{res.trace.scenario}: replay"), path)


def write_perfetto_sim(result: Any, path: Path) -> None:
    """A timed run recorded with ``record_states=True`` as a Perfetto timeline."""
    perfetto.write(timeline.from_sim(result), path)


def write_html(res: Any, path: Path, states: Any = None) -> None:
    """A replayed trace as one self-contained HTML page (``states``: a
    ``check.states.TraceStates`` of it, shown on click)."""
    from vcoresim.report import html

    html.write(res, path, states)
