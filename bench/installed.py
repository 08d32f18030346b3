"""Measure topoctl as it is installed: with its modules compiled to bytecode.

``pip install`` compiles a package's modules when it installs them, and the standard
library and every dependency here already are; an editable checkout under
``PYTHONDONTWRITEBYTECODE`` is not, so each fresh ``topoctl`` process would compile
~90 modules from source (about 60 ms) and the figure would measure the checkout, not
the tool. The benches that time ``topoctl`` processes compile first, as pip does.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import reconciler


def compile_package() -> Path:
    """Write the bytecode of every ``reconciler`` module (``__pycache__``, git-ignored)."""
    package = Path(reconciler.__file__).parent
    if not compileall.compile_dir(package, quiet=1):
        raise SystemExit(f"cannot compile {package}")
    return package
