"""Fencing reaches the outside world: ``do(ticket)``, its idempotency key and fencing token.

A host frozen inside ``do()`` (SIGSTOP) wakes after another host took the
agent over and finished the action: the fake service below, which honours
the ``Idempotency-Key`` header as payment APIs do, applies the effect once.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agentops.guards.ticket import idempotency_key
from agentops.store import STORE_URL_ENV
from agentops.store.postgres import PostgresStore
from loopback import LoopbackServer, LoopbackService
from suite import AGENTOPS, Project, cron_env, remember

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loopback import LoopbackHandler

FROZEN_INSIDE_DO = """
import time
from pathlib import Path
from pydantic import BaseModel
from agentops import Context, Ticket

class Params(BaseModel):
    service: str
    gate: str

class Result(BaseModel):
    reply: dict

def run(params: Params, ctx: Context) -> Result:
    def publish(ticket: Ticket) -> dict:
        Path(params.gate + ".inside").write_text(str(ticket.fencing_token))
        while not Path(params.gate).exists():  # the test freezes the host here
            time.sleep(0.02)
        reply = ctx.http.post(
            params.service,
            json={"item": "report"},
            headers={
                "Idempotency-Key": ticket.idempotency_key,
                "Fencing-Token": str(ticket.fencing_token),
            },
        )
        reply.raise_for_status()
        return reply.json()
    return Result(reply=ctx.action("publish", key="report", do=publish))

def reconcile(name: str, key: str, ctx: Context) -> bool:
    return False  # the service keeps one effect per idempotency key: do() may go again
"""


class IdempotentService(LoopbackService):
    """A loopback HTTP service that applies each ``Idempotency-Key`` once and replays its reply."""

    def __init__(self) -> None:
        self.effects: list[dict[str, Any]] = []
        self.requests: list[tuple[str, int]] = []
        self.replies: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self._server = LoopbackServer(self._answer, methods=("POST",))

    @property
    def url(self) -> str:
        return self._server.url("/publish")

    def _answer(self, request: LoopbackHandler) -> None:
        key = request.headers.get("Idempotency-Key")
        if not key:
            request.respond(400)
            return
        reply = self.handle(key, int(request.headers["Fencing-Token"]), request.json())
        request.respond(200, reply, content_type="application/json")

    def handle(self, key: str, token: int, body: Any) -> bytes:
        with self.lock:
            self.requests.append((key, token))
            if key not in self.replies:  # the first request with this key has the effect
                self.effects.append({"key": key, "token": token, "body": body})
                self.replies[key] = json.dumps({"effect": len(self.effects)}).encode()
            return self.replies[key]


@pytest.fixture
def service() -> Iterator[IdempotentService]:
    with IdempotentService() as found:
        yield found


def test_a_host_frozen_inside_do_has_its_effect_once(tmp_path, postgres, service):
    """Host A freezes (SIGSTOP) inside do(); host B takes over and publishes; A wakes (SIGCONT).

    A's lease lapses while it is frozen (set in the database, as its time
    running out would). B's reconcile() lets do() run again, with the same
    idempotency key and a larger fencing token; A, woken, sends its request
    late with the old ticket: the service replays its reply, one effect.
    A cannot save (74); the state and the ledger are B's.
    """
    url = postgres.database()
    gate = tmp_path / "gate"
    template = Project(tmp_path / "template")
    template.add_agent(
        "pub", FROZEN_INSIDE_DO, f'[params]\nservice = "{service.url}"\ngate = "{gate}"\n'
    )
    homes = [tmp_path / "host-a", tmp_path / "host-b"]
    for home in homes:
        shutil.copytree(template.home / "agents", home / "agents")

    def start(host: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(AGENTOPS), "--home", str(homes[host]), "run", "pub"],
            env=cron_env(homes[host], **{STORE_URL_ENV: url}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # as cron's jobs: a stopped run is never hung up (SIGHUP)
        )

    def finish(process: subprocess.Popen[str], where: str) -> tuple[int, str]:
        stdout, stderr = process.communicate(timeout=120)
        remember(f"{where}: stdout", stdout)
        remember(f"{where}: stderr", stderr)
        return process.returncode, stderr

    inside = Path(f"{gate}.inside")
    store = PostgresStore(url)
    host_a = start(0)
    try:
        assert eventually(inside.exists), "host A never got inside do()"
        token_a = int(inside.read_text())
        host_a.send_signal(signal.SIGSTOP)
        store.execute(
            "UPDATE {s}.lease SET expires_at = now() - interval '1 second' WHERE agent = 'pub'"
        )
        gate.write_text("")  # B goes straight through do(); A will, once woken
        code_b, stderr_b = finish(start(1), "host B")
        assert (code_b, stderr_b) == (0, "")
        host_a.send_signal(signal.SIGCONT)
        code_a, stderr_a = finish(host_a, "host A")
    finally:
        with contextlib.suppress(ProcessLookupError):
            host_a.send_signal(signal.SIGCONT)
            host_a.kill()
        store_state = store.load("pub")
        ledger = store.load_ledger("pub")
        store.close()
    assert code_a == 74, stderr_a
    assert "lease lapsed or was taken over by another run" in stderr_a

    key = idempotency_key("pub", "publish", "report")
    assert len(service.effects) == 1, service.effects
    assert service.requests == [(key, token_a + 1), (key, token_a)], "A's request came late"
    assert ledger.get("publish", "report").status == "committed"
    assert ledger.get("publish", "report").result == {"effect": 1}
    assert store_state.last_run.status == "succeeded"
    events_b = [e["event"] for e in Project(homes[1]).events("pub")]
    assert "run.recovered" in events_b
    assert "action.reconciled" in events_b


def eventually(check: Any, *, within_s: float = 60.0) -> bool:
    """Whether ``check()`` comes true within ``within_s`` (a bound on a hang, not a speed)."""
    event = threading.Event()
    for _ in range(int(within_s / 0.02)):
        if check():
            return True
        event.wait(0.02)
    return False
