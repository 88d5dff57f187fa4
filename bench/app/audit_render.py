"""The audit as text: a table per build (requirements, modules, classes, the app, the measure) and
a verdict, for a terminal or a text file. It reads only the report: a committed audit's JSON renders
to its committed text."""

from __future__ import annotations

from ftscale.schema import AppCheck, AuditBuild, AuditLoad, AuditMeasure, AuditReport, AuditRequirement


def wheel_kind(wheel: str | None) -> str:
    """``markupsafe-3.0.4-cp314-cp314t-manylinux….whl`` -> ``cp314t``; a pure wheel -> ``pure Python``."""
    if not wheel or not wheel.endswith(".whl"):
        return "installed" if not wheel else "?"
    _, abi, platform = wheel[: -len(".whl")].split("-")[-3:]
    return "pure Python" if abi == "none" and platform == "any" else abi


def _requirement_cell(r: AuditRequirement) -> str:
    if r.status == "wheel":
        return f"{r.version} ({wheel_kind(r.wheel)})" if r.version else str(r.detail)
    if r.status == "built":
        own = r.name in r.built
        kind = f"built from source, {wheel_kind(r.wheel)}" if own else wheel_kind(r.wheel)
        others = [b for b in r.built if b != r.name]
        return f"{r.version} ({kind})" + (f"; built from source: {', '.join(others)}" if others else "")
    if r.status == "unbuilt":
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"DOES NOT BUILD  {who}{r.detail or ''}"
    if r.status == "installed":
        return f"{r.version} (installed)"
    if r.status in ("no-wheel", "sdist-only"):
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"NO WHEEL  {who}{r.detail or ''}"
    return f"{r.status.upper()}  {r.detail or ''}"


def _gil_cell(free_threaded: bool, ok: bool, error: str | None, on: bool, culprit: str | None) -> str:
    if not ok:
        return f"import failed: {error}"
    if not free_threaded:
        return "imports (GIL build)"
    return f"GIL ON: enabled by {culprit}" if on else "GIL stays off"


def _owners(b: AuditBuild) -> dict[str, str]:
    """Each module's distribution, its version and the kind of wheel it came in."""
    dists = {d.name: d for d in b.distributions}
    out = {}
    for m in b.modules:
        d = dists.get(m.distribution or "")
        built = "built, " if d and d.built else ""
        out[m.module] = f"{d.name} {d.version} ({built}{wheel_kind(d.wheel)})" if d else str(m.distribution)
    return out


# The four classes, in the order the table lists them, with what each says of a requirement.
CLASSES = (
    ("wheel", "ships a wheel for this build"),
    ("built-gil-off", "builds from source, the GIL stays off"),
    ("built-gil-on", "builds from source, turns the GIL on"),
    ("does-not-build", "does not build here"),
)


def _class_item(r: AuditRequirement) -> str:
    if r.outcome == "built-gil-off":
        kinds = "pure Python" if wheel_kind(r.wheel) == "pure Python" else "an extension"
        return f"{r.requirement} ({kinds if r.name in r.built else 'built: ' + ', '.join(r.built)})"
    if r.outcome == "built-gil-on":
        return f"{r.requirement}: the GIL turned on by {r.gil_reenabled_by}"
    if r.outcome == "does-not-build":
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"{r.requirement}: {who}{r.detail}"
    return r.requirement


def class_lines(b: AuditBuild) -> list[str]:
    """The build's requirements by class (where the audit built from source, on a free-threaded build):
    the first two as lists, the two that fail one requirement a line, each with its reason."""
    if not any(r.outcome for r in b.requirements):
        return []
    lines = ["  requirements by class:"]
    for key, words in CLASSES:
        items = [_class_item(r) for r in b.requirements if r.outcome == key]
        if not items:
            lines.append(f"    {words}: none")
        elif key in ("wheel", "built-gil-off"):
            lines.append(f"    {words} ({len(items)}): {', '.join(items)}")
        else:
            lines += [f"    {words} ({len(items)}):", *(f"      {item}" for item in items)]
    return lines


def _app_line(check: AppCheck, free_threaded: bool) -> str:
    return _gil_cell(free_threaded, check.ok, check.error, check.gil_enabled, check.gil_reenabled_by)


def render(report: AuditReport) -> str:
    """The audit as a table per build and a verdict, for a terminal (or a text file)."""
    lines = [f"ftscale audit of {report.source}" + (f", app {report.app}" if report.app else "")]
    if report.build_from_source:
        limit = f"{report.build_timeout_s:g} s" if report.build_timeout_s else "no limit"
        lines.append(f"(what has no wheel is built from source, the way pip would, at most {limit} each)")
    for b in report.builds:
        kind = "free-threaded" if b.free_threaded else "GIL build, for contrast"
        lines += ["", f"{b.build} (CPython {b.version}, {kind})"]
        if b.requirements:
            width = max(len(r.requirement) for r in b.requirements)
            lines.append(f"  {'requirement':{width}}  wheel")
            lines += [f"  {r.requirement:{width}}  {_requirement_cell(r)}" for r in b.requirements]
        if b.modules:
            owner = _owners(b)
            width = max(len(m.module) for m in b.modules)
            dwidth = max(len(o) for o in owner.values())
            lines.append(f"  {'module':{width}}  {'from':{dwidth}}  after a fresh import")
            for m in b.modules:
                gil = _gil_cell(b.free_threaded, m.ok, m.error, m.gil_enabled, m.gil_reenabled_by)
                lines.append(f"  {m.module:{width}}  {owner[m.module]:{dwidth}}  {gil}")
        lines += class_lines(b)
        if b.app is not None:
            lines.append(f"  app {b.app.app}: {_app_line(b.app, b.free_threaded)}")
        if b.measure is not None:
            lines.append("  " + _measure_line(b.measure))
        if b.error:
            lines.append(f"  not audited further: {b.error}")
        lines += [f"  allowed (--allow): {a}" for a in b.allowed]
    lines.append("")
    allowed = sum(len(b.allowed) for b in report.builds)
    if report.passed and allowed:
        lines.append(f"PASS with {allowed} allowed exception(s) (--allow), listed above")
    elif report.passed and any(r.status == "built" for b in report.builds for r in b.requirements):
        lines.append(
            "PASS: every requirement has a wheel or builds from source, and the GIL stays off on every "
            "free-threaded build"
        )
    elif report.passed:
        lines.append("PASS: every requirement has a wheel and the GIL stays off on every free-threaded build")
    else:
        lines.append(f"FAIL: {len(report.problems)} problem(s) on free-threaded builds:")
        lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)


def _measure_line(m: AuditMeasure) -> str:
    if m.error or m.default is None or m.gil_off is None:
        return f"measure: failed ({m.error})"

    def one(load: AuditLoad) -> str:
        gil = "?" if load.gil_enabled is None else ("on" if load.gil_enabled else "off")
        errors = sum(load.errors.values())
        return f"{load.throughput_rps:,.0f} req/s (GIL {gil}{f', {errors} errors' if errors else ''})"

    ratio = f"{m.ratio:.2f}x" if m.ratio is not None else "n/a"
    if m.default.gil_enabled is False and m.gil_off.gil_enabled is False:
        # One short load each, with the GIL off in both: the ratio is only run-to-run variation.
        ratio += " (the GIL was off in both: no cost to find, the difference is run-to-run variation)"
    return (
        f"measure ({m.design}, {m.threads} thread{'s' if m.threads != 1 else ''}, {m.duration_s:g} s, "
        f"{m.generator}): default "
        f"{one(m.default)}, PYTHON_GIL=0 {one(m.gil_off)}: {ratio}"
    )
