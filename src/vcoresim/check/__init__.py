"""``check``: run a strategy over a program, shrink what it finds, write the trace.

The package is also the Python API's ``vcoresim.check(scenario, ...)``:
calling it calls :func:`vcoresim.check.api.check` (a module of this layer), so
``import vcoresim.check.driver`` and ``vcoresim.check(...)`` live together.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from vcoresim.check.api import check

        return check(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
