"""An interpreter found on this machine or built by ftscale, with what it says about itself
(``ftscale/buildfacts.py``, run by path so that the interpreter needs nothing installed).

Standard library only, and importing nothing of ftscale at import time: the provisioning script
loads it by path on a bare interpreter.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Interpreter:
    """An interpreter found or built, with what it says about itself."""

    executable: Path
    info: dict[str, Any]
    origin: str  # "cache", "PATH", "pyenv", "uv"

    @property
    def build(self) -> str:
        return str(self.info["build"])

    @property
    def version(self) -> str:
        return str(self.info["version"])


def _buildfacts_script() -> Path:
    """``ftscale/buildfacts.py``: run by path (``-I``), so the interpreter needs nothing installed."""
    try:
        from ftscale import buildfacts
    except ImportError:  # run by path from a checkout (the noxfile does), ftscale not installed
        return Path(__file__).resolve().parents[2] / "ftscale" / "buildfacts.py"
    return Path(buildfacts.__file__)


def probe(executable: Path, origin: str) -> Interpreter | None:
    """Ask an interpreter what it is; None if it does not run."""
    try:
        out = subprocess.run(
            [str(executable), "-I", str(_buildfacts_script())],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return Interpreter(executable, json.loads(out), origin)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
