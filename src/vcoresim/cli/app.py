"""The ``vcoresim`` group: ``list | check | replay | simulate | study | swarm | litmus``.

Exit codes: 0 no violation within the bounds (or, for several scenarios,
every verdict as expected), 1 violation found (or an unexpected verdict),
2 bad input (one line ``vcoresim: error: ...``), 3 cut short by a budget or
an interruption before the bounds were covered, 4 internal error (a bug).
See ``cli/common.py``.
"""

from __future__ import annotations

import click

from vcoresim.cli.check import check_cmd
from vcoresim.cli.common import Main
from vcoresim.cli.listing import list_cmd
from vcoresim.cli.litmus import litmus_cmd
from vcoresim.cli.replay import replay_cmd
from vcoresim.cli.simulate import simulate_cmd
from vcoresim.cli.study import study_cmd
from vcoresim.cli.swarm import swarm_cmd


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vcoresim")
def main() -> None:
    """An executable, checkable model of KVM on IBM POWER (Book3S HV)."""


for command in (list_cmd, check_cmd, replay_cmd, swarm_cmd, simulate_cmd, study_cmd, litmus_cmd):
    main.add_command(command)
