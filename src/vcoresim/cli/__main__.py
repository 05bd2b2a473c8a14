"""``python -m vcoresim.cli``."""

from vcoresim.cli import main

main()
