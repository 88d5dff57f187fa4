"""Inside a build's environment: the extension modules a distribution installed.

Run as ``python -m ftscale.bench.app.probe --extensions DIST ...`` by
:func:`ftscale.bench.app.checks.extension_modules`; prints JSON, distribution -> dotted module
names (``pkg._speedups``), read from the files each installed (its RECORD), so a module that its
package never imports on its own is found too. Standard library only: it runs in any
environment, one ftscale did not make included.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import json
import sys


def extension_modules(names: list[str]) -> dict[str, list[str]]:
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    found: dict[str, list[str]] = {}
    for name in names:
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            files = []
        modules = set()
        for path in files:
            suffix = next((s for s in suffixes if path.name.endswith(s)), None)
            if suffix is None or path.parts[0] == ".." or path.parts[0].endswith((".data", ".dist-info")):
                continue
            dotted = [*path.parts[:-1], path.name[: -len(suffix)]]
            if all(part.isidentifier() for part in dotted):
                modules.add(".".join(dotted))
        found[name] = sorted(modules)
    return found


if __name__ == "__main__":
    if sys.argv[1:2] != ["--extensions"]:
        sys.exit("usage: python -m ftscale.bench.app.probe --extensions DIST ...")
    json.dump(extension_modules(sys.argv[2:]), sys.stdout)
    sys.stdout.write("\n")
