"""The service in-process: every route, every error, every mode, with smoke sizes."""

from __future__ import annotations

import concurrent.futures
import os
import sysconfig
import threading
import warnings
from collections.abc import Iterator

import anyio.to_thread
import psutil
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ftscale import buildfacts, workloads
from ftscale.server.app import create_app
from ftscale.server.config import ANYIO_DEFAULT_THREAD_LIMIT, Mode, ServerConfig
from ftscale.server.executors import Admission, Overloaded
from ftscale.workloads import Workload, WorkloadClass

with warnings.catch_warnings():
    # Starlette asks for httpx2 but works with httpx; either is fine for these tests.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
POOL = 2


@pytest.fixture(scope="module", params=list(Mode), ids=str)
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """One running app per mode, shared by this module's tests (pools start once)."""
    with TestClient(create_app(ServerConfig(mode=request.param, threads=POOL))) as test_client:
        yield test_client


def _fake(name: str, compute: object) -> Workload:
    return Workload(
        name=name,
        compute=compute,  # type: ignore[arg-type]
        workload_class=WorkloadClass.PURE_PYTHON,
        size_meaning="ignored",
        default_size=1,
        min_size=1,
        max_size=10,
        smoke_size=1,
        description="a test double",
    )


# -- every workload, every mode ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(workloads.REGISTRY))
def test_work_returns_the_workloads_checksum(client: TestClient, name: str) -> None:
    workload = workloads.get(name)
    response = client.post(f"/work/{name}", json={"size": workload.smoke_size})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["checksum"] == workload.compute(workload.smoke_size)
    assert body["workload"] == name
    assert body["size"] == workload.smoke_size
    assert body["mode"] == client.app.state.service.config.mode  # type: ignore[attr-defined]
    assert body["pid"] == os.getpid()
    assert body["compute_ms"] > 0
    assert body["wait_ms"] >= 0
    if workload.io_wait_s:
        assert body["io_wait_ms"] >= workload.io_wait_s * 1000 * 0.9
    else:
        assert body["io_wait_ms"] == 0


def test_missing_body_or_size_means_default_size(client: TestClient) -> None:
    workload = workloads.get("spectral_norm")
    assert client.post("/work/spectral_norm").json()["size"] == workload.default_size
    assert client.post("/work/spectral_norm", json={}).json()["size"] == workload.default_size


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    config: ServerConfig = client.app.state.service.config  # type: ignore[attr-defined]
    assert info["mode"] == config.mode
    assert info["topology"] == "single"
    assert info["threads"] == POOL
    assert info["pool_size"] == POOL
    assert info["queue_limit"] == 4 * POOL
    assert info["gil_enabled"] == buildfacts.gil_enabled()
    assert info["interpreter"]["py_gil_disabled"] == FREE_THREADED
    assert info["anyio_default_thread_limit"] == ANYIO_DEFAULT_THREAD_LIMIT
    assert "40" in info["anyio_limiter_note"]
    assert info["pid"] == os.getpid()
    assert info["worker_pid"] is None
    assert info["thread_count"] >= 2  # this thread and the client's event loop, at least
    assert info["cpu_affinity"] == sorted(os.sched_getaffinity(0))
    assert set(info["packages"]) >= {"fastapi", "starlette", "uvicorn", "anyio", "pydantic", "numpy", "h11"}
    assert info["packages"]["fastapi"]


def test_pool_is_sized_and_running(client: TestClient) -> None:
    mode = client.app.state.service.config.mode  # type: ignore[attr-defined]
    if mode is Mode.THREADPOOL:
        limiter = client.portal.call(anyio.to_thread.current_default_thread_limiter)  # type: ignore[union-attr]
        assert limiter.total_tokens == POOL
    if mode is Mode.PROCESS:  # every pool child started before serving
        assert len(psutil.Process().children()) >= POOL


# -- bad input -----------------------------------------------------------------------------------


def test_unknown_workload_is_404_listing_known(client: TestClient) -> None:
    response = client.post("/work/no_such_thing", json={"size": 1})
    assert response.status_code == 404
    body = response.json()
    assert body["known"] == sorted(workloads.REGISTRY)
    assert "no_such_thing" in body["detail"]
    assert "nbody" in body["detail"]


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    for response in (client.get("/nowhere"), client.get("/work/nbody")):
        assert response.status_code in (404, 405)
        assert response.headers["content-type"] == "application/json"
        assert "detail" in response.json()


@pytest.mark.parametrize(
    ("size", "bound"),
    [(0, {"ge": 1}), (workloads.get("nbody").max_size + 1, {"le": workloads.get("nbody").max_size})],
)
def test_size_out_of_range_is_422_naming_the_bound(
    client: TestClient, size: int, bound: dict[str, int]
) -> None:
    response = client.post("/work/nbody", json={"size": size})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "size"]
    assert error["ctx"] == bound
    assert str(next(iter(bound.values()))) in error["msg"]


@pytest.mark.parametrize("size", ["5", 5.5, True, None, [5]])
def test_size_of_wrong_type_is_422(client: TestClient, size: object) -> None:
    response = client.post("/work/nbody", json={"size": size})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "size"]


def test_unexpected_field_and_bad_json_are_422(client: TestClient) -> None:
    assert client.post("/work/nbody", json={"size": 1, "steps": 2}).status_code == 422
    response = client.post("/work/nbody", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"]


# -- body limit and overload ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_body_client() -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(mode=Mode.INLINE, max_body_bytes=64))) as test_client:
        yield test_client


def test_declared_body_over_limit_is_413(small_body_client: TestClient) -> None:
    body = b'{"size": 1' + b" " * 100 + b"}"
    response = small_body_client.post(
        "/work/nbody", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "64 bytes" in response.json()["detail"]


def test_streamed_body_over_limit_is_413(small_body_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: chunked transfer encoding
        yield b'{"size": 1'
        yield b" " * 100
        yield b"}"

    response = small_body_client.post(
        "/work/nbody", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"]


def test_body_at_limit_is_accepted(small_body_client: TestClient) -> None:
    body = b'{"size": 1}'.ljust(64)
    response = small_body_client.post(
        "/work/nbody", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_admission_counts_running_and_queued() -> None:
    admission = Admission(pool_size=1, queue_limit=1)
    admission.enter()
    admission.enter()
    with pytest.raises(Overloaded, match="2 requests in flight for a pool of 1 with a queue limit of 1"):
        admission.enter()
    admission.leave()
    admission.enter()
    assert admission.in_flight == 2


@pytest.mark.parametrize("mode", [Mode.THREADPOOL, Mode.EXECUTOR])
def test_full_pool_and_queue_is_503_with_retry_after(mode: Mode) -> None:
    entered, release = threading.Event(), threading.Event()

    def gate(size: int) -> int:
        entered.set()
        assert release.wait(10), "test never released the gate"
        return size

    app = create_app(
        ServerConfig(mode=mode, pool_size=1, queue_limit=0), registry={"gate": _fake("gate", gate)}
    )
    with TestClient(app) as test_client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(test_client.post, "/work/gate", json={"size": 7})
        try:
            assert entered.wait(10)
            refused = test_client.post("/work/gate", json={"size": 3})
        finally:
            release.set()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["detail"]
        assert first.result(10).json()["checksum"] == 7
        assert test_client.post("/work/gate", json={"size": 5}).json()["checksum"] == 5  # place freed


@pytest.mark.parametrize("mode", [Mode.INLINE, Mode.THREADPOOL, Mode.EXECUTOR])
def test_each_mode_computes_where_it_says(mode: Mode) -> None:
    app = create_app(
        ServerConfig(mode=mode, threads=1),
        registry={"where": _fake("where", lambda size: threading.get_ident())},
    )
    with TestClient(app) as test_client:
        ident = test_client.post("/work/where").json()["checksum"]
        loop_ident = test_client.portal.call(threading.get_ident)  # type: ignore[union-attr]
        names = {thread.ident: thread.name for thread in threading.enumerate()}
    if mode is Mode.INLINE:
        assert ident == loop_ident
    elif mode is Mode.THREADPOOL:
        assert names[ident] == "AnyIO worker thread"
    else:
        assert names[ident].startswith("ftscale-compute")


def test_workload_error_is_a_json_500_that_never_echoes_its_text(caplog: pytest.LogCaptureFixture) -> None:
    def broken(size: int) -> int:
        raise RuntimeError("kaput <secret>")

    app = create_app(ServerConfig(mode=Mode.EXECUTOR), registry={"broken": _fake("broken", broken)})
    with TestClient(app) as test_client:  # the app contains it: nothing reaches the server
        response = test_client.post("/work/broken")
    assert (response.status_code, response.json()) == (500, {"detail": "internal error"})
    logged = [r for r in caplog.records if r.name == "ftscale.server"]
    assert len(logged) == 1 and logged[0].exc_info is None, logged  # one line, no traceback
    assert "RuntimeError: kaput <secret>" in logged[0].getMessage()
    assert "\n" not in logged[0].getMessage()


# -- free-threaded: real parallel requests -------------------------------------------------------


@pytest.mark.freethreaded
@pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded build")
@pytest.mark.parametrize("mode", list(Mode), ids=str)
def test_concurrent_requests_on_free_threaded_build(mode: Mode) -> None:
    names = list(workloads.REGISTRY) * 3
    with TestClient(create_app(ServerConfig(mode=mode, threads=4))) as test_client:

        def call(name: str) -> tuple[str, int]:
            size = workloads.get(name).smoke_size
            response = test_client.post(f"/work/{name}", json={"size": size})
            assert response.status_code == 200, response.text
            return name, response.json()["checksum"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(call, names))
        gil_after = test_client.get("/info").json()["gil_enabled"]
    for name, checksum in results:
        workload = workloads.get(name)
        assert checksum == workload.compute(workload.smoke_size), name
    assert gil_after is False


# -- strict JSON, whole numbers and the OpenAPI document -----------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"size": NaN}',
        b'{"size": Infinity}',
        b'{"size": -Infinity}',
        b'{"size": 1e309}',
        b'{"size": 5, "extra": NaN}',
        b'{"size": 5, "extra": [1e999]}',
        b"NaN",
    ],
)
def test_non_finite_numbers_are_422_without_a_traceback(
    small_body_client: TestClient, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG"):
        response = small_body_client.post(
            "/work/nbody", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert "not valid JSON" in error["ctx"]["error"] or "out of range" in error["ctx"]["error"]
    assert not [r for r in caplog.records if r.exc_info or r.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(("size", "expected"), [(5.0, 5), (2e0, 2), (7, 7)])
def test_whole_floats_are_integers(small_body_client: TestClient, size: float, expected: int) -> None:
    response = small_body_client.post("/work/nbody", json={"size": size})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == expected


def test_openapi_documents_every_status(small_body_client: TestClient) -> None:
    document = small_body_client.get("/openapi.json").json()
    work = document["paths"]["/work/nbody"]["post"]
    assert set(work["responses"]) == {"200", "400", "408", "413", "422", "431", "500", "503"}
    assert "Retry-After" in work["responses"]["503"]["headers"]
    # The guard's framing and head refusals may answer any route.
    assert set(document["paths"]["/health"]["get"]["responses"]) == {"200", "400", "408", "431", "503"}
    assert set(document["paths"]["/work/{workload}"]["post"]["responses"]) >= {"404", "408", "431", "503"}
    schema = document["components"]["schemas"]["NbodyRequest"]["properties"]["size"]
    assert schema["type"] == "integer"
    assert schema["maximum"] == workloads.get("nbody").max_size


def test_size_bound_is_the_cpu_budget_unless_large_sizes_are_allowed() -> None:
    nbody = workloads.get("nbody")
    assert nbody.large_max_size is not None and nbody.large_max_size > nbody.max_size
    for allow, limit in ((False, nbody.max_size), (True, nbody.large_max_size)):
        app = create_app(ServerConfig(mode=Mode.INLINE, allow_large_sizes=allow))
        with TestClient(app) as test_client:
            refused = test_client.post("/work/nbody", json={"size": limit + 1})
            schema = test_client.get("/openapi.json").json()["components"]["schemas"]["NbodyRequest"]
            info = test_client.get("/info").json()
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["ctx"] == {"le": limit}
        assert schema["properties"]["size"]["maximum"] == limit
        assert info["max_sizes"]["nbody"] == limit
        assert info["config"]["allow_large_sizes"] is allow


def test_info_reports_limits_counters_and_request_counts(small_body_client: TestClient) -> None:
    before = small_body_client.get("/info").json()["unit_requests"]["single"]
    small_body_client.get("/health")  # not work: not counted
    small_body_client.post("/work/nbody", json={"size": 1})
    small_body_client.post("/work/nbody", json={"size": 0})  # refused: not counted
    info = small_body_client.get("/info").json()
    assert info["unit_requests"] == {"single": before + 1}
    assert info["pool_state"] == "up"
    assert info["config"]["header_timeout_s"] > 0 and info["config"]["keepalive_timeout_s"] > 0
    assert info["config"]["max_connections"] >= 8
    assert info["config"]["worker_balance"] == "acceptor"
    assert set(info["counters"]) >= {"refused_busy", "dropped_client_gone", "pool_restarts", "connections"}
