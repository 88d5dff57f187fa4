"""Request mixes: the file format, bad input, weighted choice, judging answers, and both generators
sending a mix to a real server (a small ASGI app that counts what it receives)."""

from __future__ import annotations

import contextlib
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftscale.bench.http import mix as mixes
from ftscale.bench.http.loadgen import LoadSpec, run_python, run_wrk, wrk_path
from ftscale.errors import UsageError
from ftscale.schema import Expect, LoadMix, RequestMix
from ftscale.vocab import APP_PREFIX
from tests import serving

# --- the file format and bad input ---------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_a_toml_mix_resolves_to_bytes_ready_to_send(tmp_path: Path) -> None:
    (tmp_path / "order.json").write_text('{"id": 7}')
    (tmp_path / "blob.bin").write_bytes(b"\xff\x00raw")
    path = _write(
        tmp_path / "mix.toml",
        """
        [[requests]]
        name = "score"
        method = "POST"
        path = "/score"
        headers = { "X-API-Key" = "k" }
        body_file = "order.json"
        weight = 3
        expect = { status = 200, field = "score" }

        [[requests]]
        method = "PUT"
        path = "/raw"
        body_file = "blob.bin"

        [[requests]]
        method = "POST"
        path = "/inline"
        json = { a = [1, 2] }
        headers = { "content-type" = "application/vnd.example+json" }
        """,
    )
    mix = mixes.resolve(mixes.load_mix_file(path), tmp_path)
    score, raw, inline = (mixes.Prepared.of(r) for r in mix.requests)
    assert score.label == "score" and score.body == b'{"id": 7}'
    assert score.headers == (("X-API-Key", "k"), ("Content-Type", "application/json"))
    assert score.expect == Expect(status=200, field="score")
    assert raw.label == "PUT /raw" and raw.body == b"\xff\x00raw" and raw.headers == ()
    assert mix.requests[1].base64 and not mix.requests[0].base64  # text stays readable in requests.json
    assert inline.body == b'{"a":[1,2]}' and inline.headers == (
        ("content-type", "application/vnd.example+json"),
    )
    assert mixes.describe(mix) == "score 60 %, PUT /raw 20 %, POST /inline 20 %"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"requests": [{"path": "/a", "bogus": 1}]}', "requests.0.bogus: Extra inputs are not permitted"),
        ('{"requests": []}', "requests: List should have at least 1 item"),
        ('{"requests": [{"path": "/a", "weight": 0}]}', "requests.0.weight: Input should be greater than 0"),
        ('{"requests": [{"path": "/a", "expect": {"status": 99}}]}', "requests.0.expect.status"),
        ("{nope", "not valid JSON"),
    ],
)
def test_a_bad_mix_file_is_one_line_naming_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mix.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        mixes.load_mix_file(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            {"path": "/a", "body_file": "missing.json"},
            r"request 1 \(GET /a\): body_file .*missing.json: No such file",
        ),
        ({"path": f"{APP_PREFIX}/info"}, "is reserved for ftscale"),
        ({"path": "no-slash"}, "must start with /"),
        ({"path": "/a", "method": "get it"}, "is not an HTTP method"),
        ({"path": "/a", "json": {}, "body_file": "x"}, "json or body_file, not both"),
    ],
)
def test_a_request_that_cannot_be_sent_is_refused(tmp_path: Path, request_: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        mixes.resolve(RequestMix.model_validate({"requests": [request_]}), tmp_path)


@pytest.mark.parametrize("escape", ["../secret.txt", "ABSOLUTE", "link.txt", "sub/../../secret.txt"])
def test_a_body_file_must_stay_inside_the_mix_files_folder(tmp_path: Path, escape: str) -> None:
    """A mix file from elsewhere must not read a file outside its folder and copy it into a run,
    by a relative path, an absolute one or a link; ``--allow-outside-files`` lets it."""
    folder = tmp_path / "mix"
    (folder / "sub").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (folder / "link.txt").symlink_to(secret)
    name = str(secret) if escape == "ABSOLUTE" else escape
    mix = RequestMix.model_validate({"requests": [{"path": "/a", "body_file": name}]})
    with pytest.raises(
        UsageError, match=r"request 1 \(GET /a\): body_file .* is outside the mix file's folder"
    ):
        mixes.resolve(mix, folder)
    sent = mixes.resolve(mix, folder, confined=False)
    assert mixes.Prepared.of(sent.requests[0]).body == b"not yours"
    (folder / "inside.txt").write_text("fine")
    inside = RequestMix.model_validate({"requests": [{"path": "/a", "body_file": "sub/../inside.txt"}]})
    assert mixes.Prepared.of(mixes.resolve(inside, folder).requests[0]).body == b"fine"


def test_a_body_file_named_json_must_be_json(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text("not json")
    with pytest.raises(UsageError, match=r"b\.json: not valid JSON"):
        mixes.resolve(
            RequestMix.model_validate({"requests": [{"path": "/a", "body_file": "b.json"}]}), tmp_path
        )


def test_request_options() -> None:
    assert mixes.parse_request("post /score @body.json").model_dump(exclude_defaults=True) == {
        "method": "POST",
        "path": "/score",
        "body_file": "body.json",
    }
    assert mixes.parse_request('POST /x {"a": 1}').json_body == {"a": 1}
    assert mixes.parse_request("GET /items/3").method == "GET"
    with pytest.raises(UsageError, match="want 'METHOD PATH"):
        mixes.parse_request("/only-a-path")
    with pytest.raises(UsageError, match="neither @FILE nor JSON"):
        mixes.parse_request("POST /x {oops")


# --- choosing and judging ---------------------------------------------------------------------------


def _mix(*weights: float, seed: int = 0) -> LoadMix:
    requests = [{"path": f"/{i}", "weight": w} for i, w in enumerate(weights)]
    return mixes.resolve(RequestMix.model_validate({"requests": requests}), Path("."), seed=seed)


def test_the_picker_draws_by_weight_and_is_repeatable() -> None:
    mix = _mix(6, 3, 1)
    picker = mixes.Picker(mix)
    drawn = [picker.pick().path for _ in range(20_000)]
    again = mixes.Picker(mix)
    assert [again.pick().path for _ in range(20_000)] == drawn  # same seed, same sequence
    other = mixes.Picker(mix, sequence=1)
    assert [other.pick().path for _ in range(200)] != drawn[:200]  # each process its own sequence
    shares = {path: n / len(drawn) for path, n in Counter(drawn).items()}
    assert shares == pytest.approx({"/0": 0.6, "/1": 0.3, "/2": 0.1}, abs=0.015)


@pytest.mark.parametrize(
    ("expect", "status", "body", "verdict"),
    [
        (Expect(), 200, b"", None),
        (Expect(), 500, b"", "500"),
        (Expect(status=201), 200, b"", "200"),
        (Expect(field="a.b.1"), 200, b'{"a": {"b": [0, 5]}}', None),
        (Expect(field="a.b.2"), 200, b'{"a": {"b": [0, 5]}}', "check:a.b.2"),
        (Expect(field="ok", value=True), 200, b'{"ok": false}', "check:ok"),
        (Expect(field="ok", value=True), 200, b'{"ok": true}', None),
        (Expect(field="ok"), 200, b"<html>fast error page</html>", "check:ok"),
    ],
)
def test_judging_an_answer(expect: Expect, status: int, body: bytes, verdict: str | None) -> None:
    assert mixes.judge(expect, status, body) == verdict


def test_wrk_statuses_are_judged_by_what_the_mix_expects() -> None:
    statuses = {"200": 90, "201": 5, "404": 3, "500": 2}
    assert mixes.statuses_to_errors(statuses, {"200", "201"}) == {"404": 3, "500": 2}
    assert mixes.statuses_to_errors(statuses, None) == {"404": 3, "500": 2}
    assert mixes.statuses_to_errors(statuses, {"200", "404"}) == {"201": 5, "500": 2}


# --- both generators against a real server ------------------------------------------------------------

COUNTING_APP = """
import json
from collections import Counter

seen = Counter()
SECRET = bytes(range(256)) + b'"\\\\\\n end'


async def app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("http only")
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/stats":
        status, data = 200, dict(seen)
    else:
        seen[path] += 1
        headers = dict(scope["headers"])
        if path == "/echo":
            good = body == SECRET and headers.get(b"x-quote") == b'say "hi"'
            status, data = (200 if good else 400), {"v": 1}
        elif path == "/missing":
            status, data = 404, {"detail": "no"}
        else:
            status, data = 200, {"v": 2 if path == "/b" else 1}
    payload = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
"""
SECRET = bytes(range(256)) + b'"\\\n end'


@pytest.fixture
def counting_server(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "counting.py").write_text(COUNTING_APP)
    with contextlib.ExitStack() as cleanup:
        app = ["--app", "counting:app", "--app-dir", str(tmp_path), "--threads", "1"]
        served = serving.start(cleanup, *app, health=f"{APP_PREFIX}/health")
        yield served.port
        serving.stop_cleanly(served)


def _mix_file(tmp_path: Path, requests: list[dict]) -> str:
    (tmp_path / "secret.bin").write_bytes(SECRET)
    mix = mixes.resolve(RequestMix.model_validate({"requests": requests}), tmp_path)
    path = tmp_path / "requests.json"
    path.write_text(mix.model_dump_json())
    return str(path)


def _stats(port: int) -> dict[str, int]:
    return serving.request(port, "GET", "/stats")[1]


MIXED = [
    {"path": "/a", "weight": 3, "expect": {"field": "v", "value": 1}},
    {"path": "/b", "weight": 1, "expect": {"field": "v", "value": 1}},  # answers v = 2: a wrong answer
    {
        "path": "/echo",
        "method": "POST",
        "body_file": "secret.bin",
        "headers": {"X-Quote": 'say "hi"'},
        "weight": 1,
    },
]


@pytest.mark.slow
def test_the_built_in_generator_sends_the_mix_by_weight_and_judges_every_answer(
    tmp_path: Path, counting_server: int
) -> None:
    spec = LoadSpec("127.0.0.1", counting_server, "/", connections=4, duration_s=1.0)
    spec = LoadSpec(**{**spec.__dict__, "mix_file": _mix_file(tmp_path, MIXED)})
    result = run_python(spec)
    seen = _stats(counting_server)
    total = seen["/a"] + seen["/b"] + seen["/echo"]
    assert total > 50
    assert seen["/a"] / total == pytest.approx(0.6, abs=0.08)
    assert result.errors == {"check:v": seen["/b"]}  # /b's wrong field, and only that
    assert result.requests == seen["/a"] + seen["/echo"]  # /echo's bytes and header arrived whole


@pytest.mark.slow
@pytest.mark.skipif(wrk_path() is None, reason="wrk is not installed")
def test_wrk_cycles_through_the_mix_and_judges_statuses(tmp_path: Path, counting_server: int) -> None:
    requests = [*MIXED, {"path": "/missing", "weight": 1}]
    spec = LoadSpec("127.0.0.1", counting_server, "/", connections=2, duration_s=1.0)
    result = run_wrk(LoadSpec(**{**spec.__dict__, "mix_file": _mix_file(tmp_path, requests)}), threads=1)
    seen = _stats(counting_server)
    total = sum(seen.values())
    # smooth weighted round robin: exact shares, up to one unfinished cycle of 6
    assert abs(seen["/a"] - total * 3 / 6) <= 6 and abs(seen["/missing"] - total / 6) <= 6
    # wrk judges statuses: /missing's 404 only (/echo's bytes got through whole: no 400). wrk
    # stops with up to one request per connection in flight, which the server counted.
    assert set(result.errors) == {"404"} and 0 <= seen["/missing"] - result.errors["404"] <= 2
    assert 0 <= total - sum(result.errors.values()) - result.requests <= 2


def test_the_lua_table_escapes_every_byte() -> None:
    mix = mixes.resolve(
        RequestMix.model_validate(
            {"requests": [{"path": "/e", "method": "POST", "json": {"q": 'a"b\\c\n'}}]}
        ),
        Path("."),
    )
    lua = mixes.lua_table(mix)
    assert lua.startswith("return {\n") and "\n" not in lua[len("return {\n") : -len("\n}\n")]
    assert "\\034" in lua and "\\092" in lua  # the quote and the backslash, as decimal escapes
