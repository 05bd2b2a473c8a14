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
