"""A user's own ASGI app served by ftscale (``ftscale serve --app``): in-process, then for real.

The app is imported from a folder of its own and served untouched: ftscale's /health and /info
live under the reserved prefix, everything else is the app's, and the import is watched for a
GIL that comes back (with a C extension built here that declares no free-threading support).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ftscale.schema import AppCheck, Info
from ftscale.server.config import ServerConfig
from ftscale.server.userapp import AppLoadError, AppWrapper, load_app
from ftscale.vocab import APP_PREFIX
from tests import serving
from tests.conftest import FREE_THREADED, requires_free_threading
from tests.extension import build_wheel, compiler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

APP = """
import anyio.to_thread
from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{n}")
def item(n: int) -> dict:  # a def endpoint: runs in Starlette's thread pool
    return {"n": n}


@app.get("/tokens")
async def tokens() -> dict:  # on the event loop, whose thread limiter it reads
    return {"tokens": anyio.to_thread.current_default_thread_limiter().total_tokens}


@app.get("/health")
def own_health() -> dict:  # the app's own /health stays the app's
    return {"mine": True}


async def bare(scope, receive, send):  # an ASGI app that knows no lifespan
    if scope["type"] != "http":
        raise RuntimeError("http only")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"bare"})


async def broken(scope, receive, send):  # a lifespan that fails at startup
    message = await receive()
    raise RuntimeError(f"cannot start: {message['type']}")


class Thing:
    pass


thing = Thing()


def factory():
    return app
"""
_names = itertools.count()


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder holding the app as a module of a name no other test uses (imports are cached)."""
    name = f"userapp_{next(_names)}_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(APP))
    yield tmp_path, name
    sys.modules.pop(name, None)
    with contextlib.suppress(ValueError):
        sys.path.remove(str(tmp_path))


def _client(folder: Path, spec: str, threads: int = 1) -> TestClient:
    config = ServerConfig(threads=threads, app=spec, app_dir=str(folder))
    return TestClient(AppWrapper(load_app(spec, str(folder)), config))


def test_the_app_is_served_untouched_beside_ftscales_own_routes(app_dir: tuple[Path, str]) -> None:
    folder, name = app_dir
    with _client(folder, f"{name}:app", threads=3) as client:
        # anyio's limiter (FastAPI's def endpoints) is sized to the pool, as the service's is
        assert client.get("/items/2").json() == {"n": 2}
        assert client.get("/tokens").json() == {"tokens": 3}
        assert client.get("/health").json() == {"mine": True}
        assert client.get(f"{APP_PREFIX}/health").json() == {"status": "ok"}
        info = Info.model_validate(client.get(f"{APP_PREFIX}/info").json())
        assert info.app == f"{name}:app" and info.config.app == f"{name}:app"
        assert info.mode == "threadpool" and info.pool_size == 3
        assert info.unit_requests == {"single": 3}  # the app's answers, not ftscale's own
        unknown = client.get(f"{APP_PREFIX}/metrics")
        assert unknown.status_code == 404 and "reserved" in unknown.json()["detail"]
        assert client.post(f"{APP_PREFIX}/info").status_code == 405


def test_an_app_without_a_lifespan_is_served(app_dir: tuple[Path, str]) -> None:
    folder, name = app_dir
    with _client(folder, f"{name}:bare") as client:
        assert client.get("/anything").text == "bare"
        assert client.get(f"{APP_PREFIX}/health").status_code == 200


def test_an_app_whose_startup_fails_does_not_start(app_dir: tuple[Path, str]) -> None:
    folder, name = app_dir
    with (
        pytest.raises(RuntimeError, match=r"cannot start: lifespan\.startup"),
        _client(folder, f"{name}:broken"),
    ):
        pass


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("app_missing", "has no attribute 'app_missing'"),
        ("thing", "is not an ASGI app (its type is Thing)"),
        ("factory", "an app factory?"),
        ("Thing", "is not an ASGI app (its type is type)"),
    ],
)
def test_what_is_not_an_app_is_one_line(app_dir: tuple[Path, str], attr: str, message: str) -> None:
    folder, name = app_dir
    with pytest.raises(
        AppLoadError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")
    ):
        load_app(f"{name}:{attr}", str(folder))


def test_a_module_that_does_not_import_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        AppLoadError, match="module 'no_such_module_here' does not import: ModuleNotFoundError"
    ):
        load_app("no_such_module_here:app", str(tmp_path))
    with pytest.raises(AppLoadError, match="want MODULE:ATTR"):
        load_app("just-a-name", None)


def _serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=serving.REPO_ROOT,
    )


@pytest.mark.parametrize("topology", ["single", "workers"])
def test_serve_refuses_an_app_it_cannot_import_in_one_line(app_dir: tuple[Path, str], topology: str) -> None:
    folder, name = app_dir
    proc = _serve_command("--app", f"{name}:thing", "--app-dir", str(folder), "--topology", topology)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: app '{name}:thing' is not an ASGI app (its type is Thing)"
    ]


def test_serve_refuses_another_mode_for_an_app(app_dir: tuple[Path, str]) -> None:
    folder, name = app_dir
    proc = _serve_command("--app", f"{name}:app", "--app-dir", str(folder), "--mode", "process")
    assert proc.returncode == 2 and "only the threadpool mode applies" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("server", ["granian", "hypercorn"])
def test_serve_refuses_an_app_under_a_server_other_than_uvicorn(
    app_dir: tuple[Path, str], server: str
) -> None:
    folder, name = app_dir
    proc = _serve_command("--app", f"{name}:app", "--app-dir", str(folder), "--server", server)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: a user's app (--app) is served by uvicorn-h11 or uvicorn-fast only; got --server {server}"
    ]


@pytest.mark.slow
def test_uvicorn_fast_serves_the_app(app_dir: tuple[Path, str]) -> None:
    pytest.importorskip("uvloop")
    pytest.importorskip("httptools")
    folder, name = app_dir
    with contextlib.ExitStack() as cleanup:
        app = ("--app", f"{name}:app", "--app-dir", str(folder), "--server", "uvicorn-fast")
        served = serving.start(
            cleanup, *app, "--topology", "loops", "--threads", "2", health=f"{APP_PREFIX}/health"
        )
        assert serving.request(served.port, "GET", "/items/3")[1]["n"] == 3
        status, body = serving.request(served.port, "GET", f"{APP_PREFIX}/info")
        info = Info.model_validate(body)
        assert status == 200 and info.server == "uvicorn-fast" and info.app == f"{name}:app"
        assert info.loop_impl is not None and info.loop_impl.startswith("uvloop")
        serving.stop_cleanly(served)


@pytest.mark.slow
@pytest.mark.parametrize("topology", ["single", "loops", "workers"])
def test_every_topology_serves_the_app_and_counts_its_requests(
    app_dir: tuple[Path, str], topology: str
) -> None:
    folder, name = app_dir
    with contextlib.ExitStack() as cleanup:
        app = ("--app", f"{name}:app", "--app-dir", str(folder))
        served = serving.start(
            cleanup, *app, "--topology", topology, "--threads", "2", health=f"{APP_PREFIX}/health"
        )
        for n in range(6):
            assert serving.request(served.port, "GET", f"/items/{n}")[1]["n"] == n
        status, body = serving.request(served.port, "GET", f"{APP_PREFIX}/info")
        info = Info.model_validate(body)
        assert status == 200 and info.topology == topology and info.app == f"{name}:app"
        assert info.server == "uvicorn-h11" and info.tcp_nodelay_checked is not None
        assert info.unit_requests is not None and sum(info.unit_requests.values()) == 6
        assert info.tcp_nodelay is True
        serving.stop_cleanly(served)


@pytest.fixture(scope="module")
def gil_extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with an extension module ``gilfixture`` built for this interpreter, and an app using it."""
    if compiler() is None:
        pytest.skip("no C compiler")
    folder = tmp_path_factory.mktemp("gil")
    wheel = build_wheel(Path(sys.executable), folder)
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    (folder / "gilapp.py").write_text("import gilfixture\n\nasync def app(scope, receive, send):\n    pass\n")
    return folder


@requires_free_threading
def test_the_module_that_turns_the_gil_back_on_is_named(gil_extension: Path) -> None:
    """In a fresh process: once on, the GIL stays on for the process."""
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale.server.userapp", "gilapp:app", "--app-dir", str(gil_extension)],
        capture_output=True,
        text=True,
        check=True,
    )
    check = AppCheck.model_validate(json.loads(proc.stdout))
    assert check.ok and check.py_gil_disabled and check.gil_enabled
    assert check.gil_reenabled_by == "gilfixture" and "gilfixture" in (check.gil_warning or "")
    assert "gilfixture" in check.modules


@pytest.mark.skipif(FREE_THREADED, reason="the contrast: a GIL build")
def test_a_gil_build_names_no_culprit(gil_extension: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale.server.userapp", "gilapp:app", "--app-dir", str(gil_extension)],
        capture_output=True,
        text=True,
        check=True,
    )
    check = AppCheck.model_validate(json.loads(proc.stdout))
    assert check.ok and check.gil_enabled and check.gil_reenabled_by is None
