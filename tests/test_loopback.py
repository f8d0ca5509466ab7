"""The suite's loopback server (tests/loopback.py): the plumbing every fake server shares."""

import threading

import httpx
import pytest

from loopback import LoopbackServer

HANG_BOUND_S = 60.0
"""A bound on a hang, never a speed."""


def echo(request):
    request.respond(
        201,
        request.body,
        content_type="text/plain",
        headers=[("X-Method", request.command), ("X-Json", repr(request.json()))],
    )


def test_a_request_is_read_whole_and_answered_with_status_headers_and_body():
    """The body read by Content-Length reaches the answer; its reply has its headers and length."""
    with LoopbackServer(echo) as server:
        reply = httpx.post(server.url("/echo"), json={"a": 1}, timeout=HANG_BOUND_S)
        assert server.base_url.startswith("http://127.0.0.1:")
    assert reply.status_code == 201
    assert reply.content == b'{"a":1}'
    assert reply.headers["Content-Type"] == "text/plain"
    assert reply.headers["Content-Length"] == "7"
    assert (reply.headers["X-Method"], reply.headers["X-Json"]) == ("POST", "{'a': 1}")


def test_a_body_that_is_not_json_parses_as_none():
    """request.json() is None for a body that is not JSON, and for none at all."""
    with LoopbackServer(echo) as server:
        posted = httpx.post(server.url("/"), content=b"<html>", timeout=HANG_BOUND_S)
        got = httpx.get(server.url("/"), timeout=HANG_BOUND_S)
    assert posted.headers["X-Json"] == got.headers["X-Json"] == "None"


def test_a_method_the_server_does_not_take_is_answered_501_as_the_stdlib_does():
    """A GET to a server that takes POSTs only never reaches its answer."""
    answered = []
    with LoopbackServer(answered.append, methods=("POST",)) as server:
        reply = httpx.get(server.url("/"), timeout=HANG_BOUND_S)
    assert reply.status_code == 501
    assert answered == []


def test_a_head_is_answered_without_its_body():
    """The reply to a HEAD says the body's length and sends no body."""
    with LoopbackServer(echo, methods=("HEAD",)) as server:
        reply = httpx.head(server.url("/"), timeout=HANG_BOUND_S)
    assert (reply.status_code, reply.content) == (201, b"")


def test_a_keep_alive_server_answers_a_client_on_one_connection():
    """keep_alive=True: two requests of one client come over the same connection."""
    peers = []

    def answer(request):
        peers.append(request.client_address)
        request.respond(200, b"ok")

    with LoopbackServer(answer, keep_alive=True) as server, httpx.Client() as client:
        for _ in range(2):
            assert client.get(server.url("/"), timeout=HANG_BOUND_S).content == b"ok"
    assert len(peers) == 2
    assert peers[0] == peers[1]


def test_stopping_lets_a_held_answer_go_and_refuses_connections_from_then_on():
    """A request held by stopped_during() ends at stop(); a second stop() does nothing."""
    holding, done = threading.Event(), threading.Event()
    released = []

    def hold(request):
        holding.set()
        released.append(request.stopped_during(300.0))
        done.set()

    errors = []

    def call(url):
        try:
            httpx.get(url, timeout=HANG_BOUND_S)
        except httpx.HTTPError as error:
            errors.append(error)

    server = LoopbackServer(hold)
    server.start()
    client = threading.Thread(target=call, args=(server.url("/"),))
    client.start()
    assert holding.wait(HANG_BOUND_S)
    server.stop()
    assert done.wait(HANG_BOUND_S)
    assert released == [True]
    client.join(HANG_BOUND_S)
    assert not client.is_alive()
    assert len(errors) == 1, "the client got no answer"
    assert isinstance(errors[0], httpx.TransportError)
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url("/"), timeout=HANG_BOUND_S)


def test_a_server_never_started_stops_at_once():
    """stop() before start() frees the port and waits for nothing."""
    server = LoopbackServer(echo)
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url("/"), timeout=HANG_BOUND_S)
