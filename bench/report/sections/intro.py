"""The opening of a run's report: what kind of run it was, what it measured, and a GIL turned back on.

An app run (``ftscale app``) whose free-threaded build served with the GIL on says so before
anything else, naming the module CPython blamed.
"""

from __future__ import annotations

from ftscale.bench.report import fmt
from ftscale.bench.report.document import Block, Paragraph
from ftscale.bench.report.model import RunModel
from ftscale.schema import RunMeta

KIND_NAMES = {"micro": "Micro (in-process)", "http": "HTTP"}


def app_run(meta: RunMeta) -> bool:
    """A run of a user's app (``ftscale app``): an HTTP run whose workload is the app."""
    return meta.config.command == "app"


def gil_on_blocks(meta: RunMeta) -> list[Block]:
    """An app run whose free-threaded build served with the GIL on: said first, naming the module."""
    if not app_run(meta):
        return []
    on = sorted((name, b) for name, b in meta.builds.items() if b.py_gil_disabled and b.gil_enabled)
    return [
        Paragraph(
            f"Not the experiment asked for: {name} ran with the GIL on. Importing the app turned it back "
            f"on: {b.gil_reenabled_by or 'a module CPython did not name'} (an extension module that does "
            f"not declare free-threading support: no Py_mod_gil slot). Every {name} cell measures a "
            "free-threaded build running with the GIL, and is flagged GIL-on. Rebuild or replace that "
            "extension; PYTHON_GIL=0 forces the GIL off, at your own risk."
        )
        for name, b in on
    ]


def kind_name(meta: RunMeta) -> str:
    return "App (ftscale app, an HTTP run)" if app_run(meta) else KIND_NAMES[meta.kind]


def summary(model: RunModel) -> str:
    """One paragraph: the run, its host, builds, and how many cells were measured, failed and skipped."""
    meta = model.meta
    ok = sum(len(s.points) for s in model.series)
    builds = ", ".join(sorted(meta.builds)) or fmt.DASH
    preset = meta.config.get("preset")
    measured = f"preset {preset}; " if preset else ""
    return (
        f"{kind_name(meta)} run {meta.run_id} on {meta.host.hostname}, created {meta.created}: "
        f"{measured}builds {builds}; {ok} cells measured, {len(model.failed)} failed"
        + (f", {len(model.skipped)} skipped" if model.skipped else "")
        + (f"; servers {', '.join(model.servers)}" if len(model.servers) > 1 else "")
        + ". "
        "Every number is read or derived from the run's result files."
    )
