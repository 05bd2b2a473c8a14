"""The ``vcoresim`` group: ``list | check | replay | simulate | study | swarm | litmus``.

Exit codes: 0 no violation within the bounds (or, for several scenarios,
every verdict as expected), 1 violation found (or an unexpected verdict),
2 bad input (one line ``vcoresim: error: ...``), 3 cut short by a budget or
an interruption before the bounds were covered, 4 internal error (a bug).
See ``cli/common.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
from click.utils import make_default_short_help

from vcoresim.cli.common import Main

#: name -> (module, command object, the first paragraph of its help: what
#: ``--help`` lists; tests/test_first_bug.py checks it against the command).
#: Each command's module is imported only when that command runs, so a
#: command loads only what it needs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("vcoresim.cli.check", "check_cmd", "Explore interleavings of SCENARIOS (default: every built-in scenario)."),
    "list": ("vcoresim.cli.listing", "list_cmd", "Show the built-in scenarios, patches, kernel presets and invariants."),
    "litmus": (
        "vcoresim.cli.litmus",
        "litmus_cmd",
        "Run C litmus tests (herd7's C dialect as the kernel's tests use it; default: the shipped ones) and report Never / Sometimes / Always per memory model, checked against each file's expectations.",
    ),
    "replay": ("vcoresim.cli.replay", "replay_cmd", "Re-execute TRACE_FILE and print one line per step with its call stack."),
    "simulate": ("vcoresim.cli.simulate", "simulate_cmd", "Run SCENARIO under the timed driver and print guest time, IPIs, naps and latencies."),
    "study": ("vcoresim.cli.study", "study_cmd", "Guest throughput and latency for 1, 2, 4 threads per vcore on POWER7 and up to 8 on POWER8 (seed 001's gang entry)."),
    "swarm": (
        "vcoresim.cli.swarm",
        "swarm_cmd",
        "Many seeded runs of SCENARIOS (variants count as scenarios), merged: counterexamples of the same race (same property, violated by a step running the same code) are folded, with the seeds that found them.",
    ),
}


class LazyGroup(Main):
    """The group, with its commands imported when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        cmd: Any = getattr(importlib.import_module(entry[0]), entry[1])
        return cmd  # type: ignore[no-any-return]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section("Commands"):
            formatter.write_dl([(n, make_default_short_help(COMMANDS[n][2], limit)) for n in names])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vcoresim")
def main() -> None:
    """An executable, checkable model of KVM on IBM POWER (Book3S HV)."""
