import json
import socket
import subprocess
import sys
from types import SimpleNamespace

import httpx
import pytest

from agentops._infra.log import RunLogSink, make_logger
from agentops._infra.redact import REDACTED, Redactor
from agentops.context import Context
from loopback import LoopbackServer


@pytest.fixture
def server():
    """A real HTTP server on loopback; .seen lists (method, path, headers) it received.

    GET /bytes/<n> answers n bytes; POST /echo answers its body; anything else is a 404.
    """
    seen = []

    def answer(request):
        seen.append((request.command, request.path, dict(request.headers)))
        parts = request.path.split("?")[0].split("/")
        if request.command == "POST":
            request.respond(201, request.body)
        elif len(parts) == 3 and parts[1] == "bytes":
            request.respond(200, b"x" * int(parts[2]))
        else:
            request.respond(404, b"not found")

    with LoopbackServer(answer) as httpd:
        yield SimpleNamespace(url=httpd.base_url, seen=seen)


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "logs" / "fetcher.jsonl"


@pytest.fixture
def ctx(tmp_path, log_path, clock):
    """A Context whose log is a real file, as in a run."""
    sink = RunLogSink(log_path)
    log = make_logger(sink, clock=clock, redactor=Redactor({}), agent="fetcher", run_id="run-1")
    context = Context(
        agent="fetcher", run_id="run-1", now=clock(), home=tmp_path, state={}, log=log
    )
    yield context
    context.http.close()
    sink.close()


def events(log_path):
    return [json.loads(line) for line in log_path.read_text().splitlines()]


def test_each_call_logs_one_http_request_line(ctx, log_path, server):
    """Every call logs http.request with method, URL, status, duration_ms and bytes."""
    responses = [
        ctx.http.get(f"{server.url}/bytes/12"),
        ctx.http.post(f"{server.url}/echo", content=b"y" * 300_000),
        ctx.http.get(f"{server.url}/missing"),
        ctx.http.get(f"{server.url}/bytes/0"),
    ]
    lines = events(log_path)
    assert [line["event"] for line in lines] == ["http.request"] * 4
    assert [(line["method"], line["url"], line["status"], line["bytes"]) for line in lines] == [
        ("GET", f"{server.url}/bytes/12", 200, 12),
        ("POST", f"{server.url}/echo", 201, 300_000),
        ("GET", f"{server.url}/missing", 404, len(b"not found")),
        ("GET", f"{server.url}/bytes/0", 200, 0),
    ]
    assert [line["bytes"] for line in lines] == [len(r.content) for r in responses]
    for line in lines:
        assert isinstance(line["duration_ms"], int | float)
        assert line["duration_ms"] >= 0
        assert (line["agent"], line["run_id"]) == ("fetcher", "run-1")


def test_secret_query_parameters_are_redacted_in_the_log(ctx, log_path, server):
    """?api_key=... reaches the server but is redacted in the logged URL."""
    ctx.http.get(f"{server.url}/bytes/1", params={"api_key": "s3cr3t-value", "page": "2"})
    assert server.seen[-1][1] == "/bytes/1?api_key=s3cr3t-value&page=2"
    assert "s3cr3t-value" not in log_path.read_text()
    (line,) = events(log_path)
    assert line["url"] == f"{server.url}/bytes/1?api_key={REDACTED}&page=2"


def test_password_in_the_url_is_redacted_in_the_log(ctx, log_path, server):
    """user:password@ in a URL logs the user but not the password."""
    host = server.url.removeprefix("http://")
    ctx.http.get(f"http://bob:pw-unshaped-7@{host}/bytes/1")
    assert "pw-unshaped-7" not in log_path.read_text()
    (line,) = events(log_path)
    assert line["url"] == f"http://bob:{REDACTED}@{host}/bytes/1"


def test_request_headers_never_appear_in_the_log(ctx, log_path, server):
    """An Authorization header the agent sends is not logged, whatever its shape."""
    ctx.http.get(
        f"{server.url}/bytes/1",
        headers={"Authorization": "Custom unshaped-credential-42"},
    )
    assert server.seen[-1][2]["Authorization"] == "Custom unshaped-credential-42"
    text = log_path.read_text()
    assert "unshaped-credential-42" not in text
    assert "Authorization" not in text


def test_connection_refused_logs_http_error_and_its_request_and_raises(ctx, log_path):
    """A closed port raises httpx.ConnectError, logs http.error and an http.request of no status."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/bytes/1"
    with pytest.raises(httpx.ConnectError):
        ctx.http.get(url)
    line, request = events(log_path)
    assert (line["level"], line["event"], line["method"], line["url"]) == (
        "warning",
        "http.error",
        "GET",
        url,
    )
    assert "ConnectError" in line["error"]
    assert (request["event"], request["method"], request["url"]) == ("http.request", "GET", url)
    assert (request["status"], request["bytes"], request["error"]) == (None, 0, line["error"])
    assert request["duration_ms"] >= 0


def _python(code):
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_httpx_is_not_imported_by_the_runner():
    """Importing the runner (what every cron tick does) does not import httpx."""
    assert _python("import agentops.run.runner, sys; print('httpx' in sys.modules)") == "False"


def test_httpx_is_imported_when_ctx_http_is_first_touched():
    """httpx is loaded the first time an agent touches ctx.http, not before."""
    code = (
        "import sys\n"
        "from agentops.context import Context\n"
        "ctx = Context(agent='a', run_id='r', now=None, home=None, state={}, log=None)\n"
        "before = 'httpx' in sys.modules\n"
        "ctx.http\n"
        "print(before, 'httpx' in sys.modules)\n"
    )
    assert _python(code) == "False True"
