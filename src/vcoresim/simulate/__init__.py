"""``simulate``: the timed driver, its metrics, comparisons and the policy study.

The package is also the Python API's ``vcoresim.simulate(scenario, ...)``:
calling it calls :func:`vcoresim.simulate.api.simulate`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from vcoresim.simulate.api import simulate

        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
