"""One module per extra chat platform's test sandbox, discovered by tests/conftest.py.

A module here defines ``ENV_FIXTURE``, the name of a session-scoped fixture it also defines
(listed in ``__all__`` with any other fixtures it shares). That fixture yields the platform's
running loopback emulator, which has ``tokenrelay_env() -> dict[str, str]``: the TOKENRELAY_*
variables that point the workers at it (API base URL, credentials). The session's settings
include every module's variables, so the shared worker can deliver to every platform.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """Every platform module in this package, by name."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    ]
