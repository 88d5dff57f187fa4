"""The audit's verdict on one build: what fails it, what ``--allow`` excuses, and (where the
audit built from source) each requirement's class.

Only a free-threaded build is judged; its GIL twin is shown for contrast and never fails the audit.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.env.fromsource import canonical
from ftscale.schema import AuditBuild, AuditDistribution, AuditModule, AuditRequirement


def _culprit_names(culprit: str | None) -> set[str]:
    if not culprit:
        return set()
    module = culprit.split(" ")[0]
    return {canonical(module), canonical(module.split(".")[0])}


def _requirement_problem(r: AuditRequirement) -> str | None:
    if r.status in ("wheel", "built", "installed"):
        return None
    if r.status in ("no-wheel", "sdist-only"):
        source = "; pip would build it from source" if r.status == "sdist-only" else ""
        whose = f" (needs {r.missing})" if r.missing and r.missing != r.name else ""
        return f"{r.requirement}{whose}: {r.missing or r.name} has no wheel for this build{source}"
    if r.status == "unbuilt":
        whose = f"{r.missing} " if r.missing and r.missing != r.name else ""
        return f"{r.requirement}: {whose}does not build from source: {r.detail}"
    return f"{r.requirement}: {r.detail}"


def _turned_on_by(dist: AuditDistribution, modules: Sequence[AuditModule]) -> str | None:
    """The extension module of ``dist`` (built from source) that turned the GIL on when imported
    alone or with its package, as CPython named it (the warning, or the verbose mode's list)."""
    own = set(dist.extensions)
    for m in modules:
        if m.distribution == dist.name and m.ok and m.gil_enabled:
            named = [n for n in [m.gil_reenabled_by or "", *m.gil_modules] if n in own]
            if named:
                return named[0]
    return None


def outcome(r: AuditRequirement, build: AuditBuild) -> AuditRequirement:
    """The requirement's class on a free-threaded build where the audit built from source."""
    if r.status == "wheel":
        return r.model_copy(update={"outcome": "wheel"})
    if r.status == "unbuilt":
        return r.model_copy(update={"outcome": "does-not-build"})
    if r.status != "built":
        return r
    dists = {d.name: d for d in build.distributions}
    for name in r.built:
        if name in dists and (culprit := _turned_on_by(dists[name], build.modules)):
            return r.model_copy(update={"outcome": "built-gil-on", "gil_reenabled_by": culprit})
    return r.model_copy(update={"outcome": "built-gil-off"})


def judge(build: AuditBuild, allow: frozenset[str], app: str | None, classes: bool = False) -> AuditBuild:
    """What fails the audit on ``build`` (a free-threaded one), and what ``allow`` excuses;
    ``classes``: each requirement's class (:func:`outcome`) too.

    Each finding carries the names ``--allow`` may give for it: the requirement, the
    distribution without a wheel (or that did not build), the module, its distribution, the
    module CPython named.
    """
    if not build.free_threaded:
        return build
    if classes:
        build = build.model_copy(update={"requirements": [outcome(r, build) for r in build.requirements]})
    found: list[tuple[str, set[str]]] = []
    for r in build.requirements:
        problem = _requirement_problem(r)
        if problem is not None:
            found.append((problem, {r.name, canonical(r.missing or r.name)}))
    built = {d.name for d in build.distributions if d.built}
    blamed: set[tuple[str | None, str | None]] = set()
    for m in build.modules:
        if m.ok and m.gil_enabled:
            # A built distribution's extension modules are each imported too: one problem per
            # module that turned the GIL on, not one per module of the package that imports it.
            if m.distribution in built and (m.distribution, m.gil_reenabled_by) in blamed:
                continue
            blamed.add((m.distribution, m.gil_reenabled_by))
            names = {canonical(m.module), canonical(m.distribution or m.module)}
            text = f"importing {m.module} turns the GIL back on (enabled by {m.gil_reenabled_by})"
            found.append((text, names | _culprit_names(m.gil_reenabled_by)))
    if build.app is not None and not build.app.ok:
        found.append((str(build.app.error), {canonical(app or "")}))
    elif build.app is not None and build.app.gil_enabled:
        text = f"importing the app {app} turns the GIL back on (enabled by {build.app.gil_reenabled_by})"
        found.append((text, _culprit_names(build.app.gil_reenabled_by)))
    found = [(f"{build.build}: {text}", names) for text, names in found]
    problems = [text for text, names in found if not names & allow]
    allowed = [text for text, names in found if names & allow]
    return build.model_copy(update={"problems": problems, "allowed": allowed})
