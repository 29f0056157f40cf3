"""Old names that keep working for a while: each warns once per use with the name that
replaces it and the version that removes it.

A package lists its moved names in a module-level `_MOVED = {name: "new.module"}` table and
answers them from its `__getattr__` through `moved()`. The import-layer test reads `_MOVED`
tables as what they are — forwarding addresses, not dependencies.
"""

from __future__ import annotations

import importlib
import warnings

REMOVED_IN = "0.3.0"


def moved(package: str, table: dict[str, str], name: str, *, removed_in: str = REMOVED_IN):
    """`name` from its new module, with a DeprecationWarning; AttributeError if it never was here."""
    target = table.get(name)
    if target is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    warnings.warn(f"{package}.{name} has moved to {target}.{name} (or `import rewardkit as rk; rk.{name}` where "
                  f"offered); the old name is removed in rewardkit {removed_in}", DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module(target), name)
