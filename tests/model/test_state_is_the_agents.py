"""`ctx.state` is the agent's: agentops replaces only the secrets it knows, and warns of the rest.

Issue 19, defect 4: ``ctx.state["next_page_token"] = "CAEQAA-cursor-2"`` was
saved as ``"[REDACTED]"`` with no word in the log, and the agent lost its
cursor. A value that merely looks secret (by its key's name or its shape)
is now kept, and a ``state.looks_secret`` warning names its key, once; a
secret agentops knows (the environment's, a provider's key, an env file's
value, a secret param) is still replaced, in the state as everywhere.
"""

from __future__ import annotations

from agentops._infra.redact import Redactor
from leakscan import FAKE_SECRETS

CURSOR = "CAEQAA-cursor-2"
SHAPED = "ghp_" + "Cursor0Looks1Like2A3GitHub4Token5x6Y"  # a GitHub token's shape, not a secret

KEEPS = """
import os
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    extra: bool = False

class Result(BaseModel):
    pages: int

def run(params: Params, ctx: Context) -> Result:
    ctx.state["next_page_token"] = "CURSOR"
    ctx.state["auth"] = {"refresh_token": "rt-opaque-42", "expires": 3600}
    ctx.state["seen"] = ["SHAPED"]
    ctx.state["key_from_env"] = os.environ["FAKE_OPENAI_KEY"]
    if params.extra:
        ctx.state["session_secret"] = "another-one"
    ctx.log.info("page.read", token=ctx.state["next_page_token"])
    return Result(pages=ctx.state.get("pages", 0) + 1)
""".replace("CURSOR", CURSOR).replace("SHAPED", SHAPED)


def warnings_of(project, name: str) -> list[dict]:
    return [e for e in project.events(name) if e["event"] == "state.looks_secret"]


def test_a_cursor_named_like_a_token_is_kept_and_said_once(project, run_agentops):
    """The cursor survives run after run; one warning names the keys, the next run says nothing."""
    project.add_agent("pager", KEEPS)
    first = run_agentops("run", "pager")
    assert (first.returncode, first.stdout, first.stderr) == (0, "", "")
    data = project.state("pager")["data"]
    assert data["next_page_token"] == CURSOR
    assert data["auth"] == {"refresh_token": "rt-opaque-42", "expires": 3600}
    assert data["seen"] == [SHAPED]
    assert data["key_from_env"] == "[REDACTED]", "a secret agentops knows is still replaced"
    [warning] = warnings_of(project, "pager")
    assert warning["level"] == "warning"
    assert warning["keys"] == ["auth.refresh_token", "next_page_token", "seen[0]"]

    second = run_agentops("run", "pager")
    assert second.returncode == 0
    assert len(warnings_of(project, "pager")) == 1, "kept keys are not said again"
    assert project.state("pager")["data"]["next_page_token"] == CURSOR

    third = run_agentops("run", "pager", "-p", "extra=true")
    assert third.returncode == 0
    assert warnings_of(project, "pager")[-1]["keys"] == ["session_secret"], "only the new key"
    logged = next(e for e in project.events("pager") if e["event"] == "page.read")
    assert logged["token"] == "[REDACTED]", "logs keep redacting what looks secret"


def test_known_only_replaces_what_it_was_given():
    """Redactor.known: an environment secret goes, wherever it is; a token shape stays."""
    redactor = Redactor(FAKE_SECRETS)
    secret = FAKE_SECRETS["FAKE_DB_PASSWORD"]
    data = {"password": "not-known", "note": f"pw {secret}", secret: SHAPED, "n": 3}
    assert redactor.known(data) == {
        "password": "not-known",
        "note": "pw [REDACTED]",
        "[REDACTED]": SHAPED,
        "n": 3,
    }
    assert redactor.looks_secret({"password": "x", "list": [SHAPED, "plain"], "n": 1}) == [
        "list[0]",
        "password",
    ]
    assert redactor.looks_secret({"cursor": "plain", "tokens": 12}) == []
