"""Optional dependencies (the ``[extra]``s of pyproject.toml), imported when first needed."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, user: str, extra: str) -> ModuleType:
    """``module`` imported, or an ImportError saying that ``user`` needs it and which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{user} needs {module}: pip install '.[{extra}]' from a checkout "
                          f"(or pip install {module})") from None
