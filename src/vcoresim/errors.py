"""Errors every layer may raise for bad input; the CLI turns them into one line.

This module is the bottom of the layering (it imports nothing of vcoresim):
the kernel model rejects a configuration it cannot run with the same error
type the scenario loader uses, and ``vcoresim`` prints ``vcoresim: error:``
followed by the message, which names the field (exit 2).  Every bad-input
error is an ``InputError``, so a path that forgets to catch its own kind
still ends in that one line, never in a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class InputError(Exception):
    """Bad input of any kind (a file, an option, an API argument); the message names
    the field, the file position or the option."""


class ScenarioError(InputError):
    """Bad scenario input (a file, a CLI option or an API argument); the message names the field."""


class ConfigError(ScenarioError):
    """Something only the model can reject, as the kernel would (a vCPU id past
    ``KVM_MAX_VCORES``, a radix guest on POWER8); names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``name`` is close to one of ``known``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
