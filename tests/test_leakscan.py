"""The scanner the session runs at its end: it finds each fake secret in every form, and fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agentops._infra.redact import Redactor
from leakscan import FAKE_SECRETS, MARKERS, Leak, forms, scan_bytes, scan_text, scan_tree
from suite import REPO

EVERY_FORM = [
    pytest.param(name, form, id=f"{name}: {form}")
    for name, value in FAKE_SECRETS.items()
    for form in forms(value)
]


@pytest.mark.parametrize(("name", "form"), EVERY_FORM)
def test_every_form_of_every_secret_is_found_and_named(tmp_path, name, form):
    """A file holding a secret in any of its forms is a leak naming the secret and a form."""
    needle = forms(FAKE_SECRETS[name])[form]
    path = tmp_path / "deep" / "log.jsonl"
    path.parent.mkdir()
    path.write_bytes(b'{"event":"x","line":"before ' + needle + b' after"}\n')
    found = scan_tree(tmp_path)
    path.unlink()  # the session scan must not find the plant
    assert [(leak.secret, leak.where) for leak in found] == [(name, str(path))]
    assert forms(FAKE_SECRETS[name])[found[0].form] in needle


def test_the_forms_are_the_ones_urllib_httpx_and_json_write():
    """The forms are computed by the libraries that write them, not guessed."""
    api = FAKE_SECRETS["FAKE_SERVICE_API_KEY"]
    found = set(forms(api).values())
    assert json.dumps(api).encode()[1:-1] in found
    assert json.dumps({"a": api}, ensure_ascii=False).encode()[7:-2] in found
    assert json.dumps(json.dumps(api)).encode()[3:-3] in found
    assert any(f.startswith(b"Wq8Tamarind$k!\\%C3%9Cn") for f in found), "httpx: $ ! \\ bare"
    assert any(f.startswith(b"Wq8Tamarind%24k%21%5C%C3%9Cn") for f in found), "urllib: encoded"
    assert b"Tr0ub4dorQ+%26+Vg6Sumac+horse" in set(forms(FAKE_SECRETS["FAKE_DB_PASSWORD"]).values())


@pytest.mark.parametrize("name", FAKE_SECRETS)
def test_half_of_a_secret_is_still_a_leak(name):
    """A secret cut in two, or redacted in part: either half is found, as part of the secret."""
    value = FAKE_SECRETS[name]
    for half in (value[: len(value) // 2], value[len(value) // 2 :]):
        (leak,) = scan_text(f"x {half} y", "a line")
        assert leak.secret == name
        assert leak.form.startswith("part of it:")


def test_clean_and_redacted_text_is_no_leak():
    """What agentops writes, secrets redacted: nothing found."""
    line = " ".join(value for value in FAKE_SECRETS.values())
    assert scan_text(line, "raw") != []
    redacted = Redactor(FAKE_SECRETS).line({"line": line, "digest": "[REDACTED:1a2b3c4d]"}).decode()
    assert scan_text(redacted, "a log line") == []
    assert scan_bytes(b"\x00\xff binary \xfe", "a binary file") == []


def test_file_names_are_scanned_and_links_not_followed(tmp_path):
    """A secret in a file's name is a leak; a link out of the tree is not followed."""
    outside = Path(tempfile.mkdtemp())
    try:
        (outside / "secret.txt").write_text(FAKE_SECRETS["FAKE_GITHUB_TOKEN"])
        (tmp_path / "link").symlink_to(outside / "secret.txt")
        (tmp_path / "dir-link").symlink_to(outside)
        assert scan_tree(tmp_path) == []
        named = tmp_path / f"{MARKERS['FAKE_OPENAI_KEY'][0]}.md"
        named.write_text("")
        found = scan_tree(tmp_path)
        named.unlink()
    finally:
        (outside / "secret.txt").unlink()
        outside.rmdir()
    assert found == [
        Leak("FAKE_OPENAI_KEY", f"the name of {named}", found[0].form),
    ]


PLANTED = """
import os

def test_writes_a_secret(tmp_path):
    (tmp_path / "out.json").write_text('{"k": "' + os.environ["FAKE_OPENAI_KEY"] + '"}')

def test_prints_a_secret(run_agentops):
    run_agentops("run", "ghost")  # its stderr is clean: the agent is unknown
    from suite import remember
    remember("a planted print", "token=" + os.environ["FAKE_GITHUB_TOKEN"])

def test_makes_a_secret_for_the_session(tmp_path_factory):
    from suite import made_once
    def make(path):
        (path / "made.json").write_text(os.environ["FAKE_SERVICE_API_KEY"])
    made_once(tmp_path_factory.getbasetemp(), "shared", make)
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "two workers"])
def test_a_planted_secret_fails_the_session(workers):
    """A pytest session with this conftest, whose tests leak, passes its tests and exits 1.

    On two workers (pytest-xdist, as the suite runs), each finds what its own
    tests leaked, and the controller fails the session on both.
    """
    # All of the inner session lives outside this session's base directory,
    # else this session's own scan would find the plant.
    inner = Path(tempfile.mkdtemp(prefix="planted-"))
    try:
        (inner / "test_planted.py").write_text(PLANTED)
        result = subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conftest"),
                *("--rootdir", str(inner), "--basetemp", str(inner / "tmp")),
                *workers,
                str(inner / "test_planted.py"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            cwd=inner,
            env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
        )
    finally:
        shutil.rmtree(inner)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    assert "3 fake secrets leaked" in result.stdout
    assert "/shared/made.json: FAKE_SERVICE_API_KEY (raw)" in result.stdout
    assert "/out.json: FAKE_OPENAI_KEY (raw)" in result.stdout
    assert "LEAKED a planted print: FAKE_GITHUB_TOKEN (raw)" in result.stdout
