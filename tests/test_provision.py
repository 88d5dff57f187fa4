"""Interpreter provisioning, tested without building CPython: sources, checksums, cache, reuse."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import IO

import pytest

from ftscale.bench.env import provision
from ftscale.bench.env.provision import BuildSpec, Interpreter, Pin

PAYLOAD = b"not really a tarball"
PIN = Pin("3.14", "3.14.99", hashlib.sha256(PAYLOAD).hexdigest())


def test_every_build_has_a_pin_and_twins_share_it() -> None:
    assert provision.BUILDS == ("3.13", "3.13t", "3.14", "3.14t")
    assert BuildSpec("3.14").pin == BuildSpec("3.14t").pin
    assert provision.PINS["3.13"].version == "3.13.5"
    assert provision.PINS["3.14"].version == "3.14.7"
    with pytest.raises(provision.ProvisionError, match=r"unknown build '3\.12'"):
        provision.parse_build("3.12")


def test_twins_are_configured_identically_except_disable_gil() -> None:
    for optimized in (False, True):
        gil, free = BuildSpec("3.14", optimized), BuildSpec("3.14t", optimized)
        assert free.configure_args() == [*gil.configure_args(), "--disable-gil"]
    assert "--enable-optimizations" in BuildSpec("3.13", optimized=True).configure_args()


def test_cache_key_changes_with_version_flags_and_checksum(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {BuildSpec(b, o).key() for b in provision.BUILDS for o in (False, True)}
    assert len(keys) == 8
    assert BuildSpec("3.14t").key() == BuildSpec("3.14t").key()
    before = BuildSpec("3.14").key()
    monkeypatch.setitem(provision.PINS, "3.14", Pin("3.14", "3.14.7", "0" * 64))
    assert BuildSpec("3.14").key() != before
    assert BuildSpec("3.14").key().startswith("cpython-3.14.7-plain-")


def test_apt_mirrors_reads_one_line_and_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.one.test/debian bookworm main\n"
        "deb http://security.one.test/debian-security bookworm-security main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.two.test/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://mirror.two.test/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://disabled.test/debian\nSuites: bookworm\nEnabled: no\n"
    )
    assert provision.apt_mirrors(tmp_path) == [
        "http://mirror.one.test/debian",
        "http://mirror.two.test/debian",
    ]
    assert provision.apt_mirrors(tmp_path / "missing") == []


def test_sources_are_python_org_first_then_each_mirror() -> None:
    urls = provision.source_urls(PIN, ["http://m.test/debian"])
    assert urls == [
        "https://www.python.org/ftp/python/3.14.99/Python-3.14.99.tar.xz",
        "http://m.test/debian/pool/main/p/python3.14/python3.14_3.14.99.orig.tar.xz",
    ]


class FakeWeb:
    """URL -> bytes, or an OSError for an unreachable host; records what was asked."""

    def __init__(self, pages: dict[str, bytes | None]) -> None:
        self.pages, self.asked = pages, []

    def __call__(self, url: str) -> IO[bytes]:
        self.asked.append(url)
        page = self.pages.get(url)
        if page is None:
            raise OSError("unreachable")
        return io.BytesIO(page)


def test_fetch_falls_back_to_the_next_source(tmp_path: Path) -> None:
    web = FakeWeb({"https://a.test": None, "http://b.test": PAYLOAD})
    path = provision.fetch(PIN, tmp_path, ["https://a.test", "http://b.test"], opener=web, log=lambda _: None)
    assert path.read_bytes() == PAYLOAD
    assert web.asked == ["https://a.test", "http://b.test"]
    # a verified copy is reused without asking again
    assert provision.fetch(PIN, tmp_path, ["https://a.test"], opener=web, log=lambda _: None) == path
    assert len(web.asked) == 2


def test_checksum_mismatch_is_a_hard_error(tmp_path: Path) -> None:
    web = FakeWeb({"https://a.test": b"tampered", "http://b.test": PAYLOAD})
    with pytest.raises(provision.ChecksumMismatch, match="expected sha256"):
        provision.fetch(PIN, tmp_path, ["https://a.test", "http://b.test"], opener=web, log=lambda _: None)
    assert web.asked == ["https://a.test"]  # never tried the next source
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_no_source_reachable(tmp_path: Path) -> None:
    with pytest.raises(provision.ProvisionError, match=r"could not download Python 3\.14\.99"):
        provision.fetch(PIN, tmp_path, ["https://a.test"], opener=FakeWeb({}), log=lambda _: None)


def _info(build: str, version: str) -> dict[str, object]:
    return {
        "build": build,
        "version": version,
        "implementation": "cpython",
        "py_gil_disabled": build.endswith("t"),
        "config_args": "",
        "executable": "x",
    }


def test_existing_interpreters_are_reused_only_at_the_pinned_version(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {
        Path("/opt/a/python3.14t"): _info("3.14t", "3.14.7"),
        Path("/opt/b/python3.13"): _info("3.13", "3.13.0"),
        Path("/opt/c/python3.14"): _info("3.14", "3.14.7"),
    }
    monkeypatch.setattr(provision, "candidates", lambda env=None: iter((p, "PATH") for p in found))
    usable, rejected = provision.find_existing(
        ["3.13", "3.14t"], probe_fn=lambda path, origin: Interpreter(path, found[path], origin)
    )
    assert list(usable) == ["3.14t"] and usable["3.14t"].executable == Path("/opt/a/python3.14t")
    assert [r.version for r in rejected] == ["3.13.0"]


def _broken_tarball(path: Path, version: str) -> None:
    script = b"#!/bin/sh\necho 'checking for a compiler... none' >&2\nexit 1\n"
    with tarfile.open(path, "w:xz") as tar:
        info = tarfile.TarInfo(f"Python-{version}/configure")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))


def test_a_failed_build_names_its_step_and_log_and_leaves_no_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tarball = tmp_path / "Python.tar.xz"
    _broken_tarball(tarball, provision.PINS["3.14"].version)
    monkeypatch.setattr(provision, "fetch", lambda *a, **k: tarball)
    root = tmp_path / "cache"
    spec = BuildSpec("3.14t")
    with pytest.raises(
        provision.ProvisionError, match=r"build step 'configure' failed .*log: .*configure\.log"
    ):
        provision.build(spec, root=root, log=lambda _: None)
    assert not provision.install_dir(spec, root).exists()
    assert provision.cached(spec, root) is None
    assert list((root / "tmp").iterdir()) == []  # the staging area is cleaned up
    log = root / "logs" / spec.key() / "configure.log"
    assert "none" in log.read_text()


def test_links_point_nox_at_the_provisioned_interpreter(tmp_path: Path) -> None:
    exe = tmp_path / "python3.14t"
    exe.write_text("")
    link = provision.link("3.14t", exe, root=tmp_path)
    assert link == tmp_path / "bin" / "python3.14t" and link.resolve() == exe
    assert provision.linked("3.14t", root=tmp_path) == link
    assert provision.linked("3.13", root=tmp_path) is None


def test_marker_of_a_real_cached_build_matches_its_pin() -> None:
    """Where a build is cached on this machine, its record agrees with the pin table."""
    seen = 0
    for name in provision.BUILDS:
        exe = provision.cached(BuildSpec(name))
        if exe is None:
            continue
        marker = json.loads((exe.parent.parent / provision.MARKER).read_text())
        assert marker["sha256"] == provision.PINS[name.rstrip("t")].sha256
        assert marker["configure_args"] == BuildSpec(name).configure_args()
        seen += 1
    if not seen:
        pytest.skip("no interpreter has been built on this machine yet")
