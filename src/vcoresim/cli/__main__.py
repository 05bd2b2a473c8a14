"""``python -m vcoresim.cli``."""

from vcoresim.cli.entry import run

run()
