"""Shared fixtures: running the CLI as a user would, in a scratch directory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vcoresim.examples import EXAMPLES

#: Every example model and the verdict it is known to have under SC.
KNOWN_ANSWERS: dict[str, str] = {name: expected for name, (_b, expected, _d) in EXAMPLES.items()}


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


Cli = Callable[..., CliRun]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run ``vcoresim ARGS`` in a subprocess (the real entry point, real exit code)
    with ``tmp_path`` as working directory, so default trace paths land there."""

    def run(*args: str, cwd: Path | None = None, timeout: float = 120, columns: int = 200) -> CliRun:
        env = {**os.environ, "COLUMNS": str(columns)}
        env.pop("VCORESIM_REPRODUCIBLE", None)
        p = subprocess.run(
            [sys.executable, "-m", "vcoresim.cli", *args],
            cwd=cwd or tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return CliRun(p.returncode, p.stdout, p.stderr)

    return run


def wait_cpu(pid: int, cpu_seconds: float, timeout: float = 180.0) -> float:
    """Wait until process ``pid`` has used ``cpu_seconds`` of CPU (user + system),
    so a signal reaches it in the middle of its work whatever the machine's load
    (a wall-clock sleep on a loaded machine can land during the imports).
    Returns the CPU seconds seen (less if the process ended or the wait timed out)."""
    import time

    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.time() + timeout
    used = 0.0
    while time.time() < deadline:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return used
        if fields[0] == "Z":
            return used
        used = (int(fields[11]) + int(fields[12])) / tick
        if used >= cpu_seconds:
            return used
        time.sleep(0.1)
    return used
