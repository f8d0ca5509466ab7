r"""Known fake secrets, and a scanner that finds them in every form they may be written in.

The whole suite runs with :data:`FAKE_SECRETS` in the environment (see
``conftest.py``). At the end of the session every file under pytest's base
temporary directory, and everything a command printed, is scanned:

    leaks = scan_tree(basetemp) + scan_text("agentops run x: stderr", text)

Each secret holds :data:`MARKERS`, runs of letters and digits that no
encoding this project meets changes (percent-encoding and JSON escaping
leave them bare), one near each end. So the scan looks first for a marker,
at memory-search speed, and only in a text holding one for the forms
(:func:`forms`) that name how it was written: raw, percent-encoded as urllib
and as httpx write it, ``\uXXXX``-escaped inside JSON, JSON in JSON. A marker
with no whole form around it is still a leak: part of a secret, cut short or
half redacted.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx

__all__ = ["FAKE_SECRETS", "MARKERS", "Leak", "forms", "scan_bytes", "scan_text", "scan_tree"]

FAKE_SECRETS: dict[str, str] = {
    # Named like an API key, holding what URLs and shells treat specially, and non-ASCII.
    "FAKE_SERVICE_API_KEY": "Wq8Tamarind$k!\\Ünïcødé-Ω-Zx5Cardamom",
    # Shaped like an OpenAI key.
    "FAKE_OPENAI_KEY": "sk-proj-Hx3JuniperBv72kLmQ0pRsT9uV-Nutmeg4Fennel",
    # Shaped like a GitHub token: ghp_ and 36 letters and digits.
    "FAKE_GITHUB_TOKEN": "ghp_Kp6SaffronGt93Lw0Xc2Vb7Nm4Qz1Ry8Jq",
    # A password: nothing in its shape says it is one, only its variable's name.
    "FAKE_DB_PASSWORD": "Tr0ub4dorQ & Vg6Sumac horse",
    # Shaped like an Anthropic key (sent in x-api-key, not Authorization).
    "FAKE_ANTHROPIC_KEY": "sk-ant-api03-Mv4HibiscusTq8Wn-Zr2Clove5Anise",
}
"""What the suite's environment holds, by variable name: known, so they can be looked for."""

MARKERS: dict[str, tuple[str, str]] = {
    "FAKE_SERVICE_API_KEY": ("Wq8Tamar", "Cardamom"),
    "FAKE_OPENAI_KEY": ("Hx3Junip", "g4Fennel"),
    "FAKE_GITHUB_TOKEN": ("Kp6Saffr", "Qz1Ry8Jq"),
    "FAKE_DB_PASSWORD": ("Tr0ub4do", "Vg6Sumac"),
    "FAKE_ANTHROPIC_KEY": ("Mv4Hibis", "e5Anise"),
}
"""Per secret, letters and digits near each end, in every form of it however encoded.

Any piece of a secret as long as half of it holds one of them.
"""


@dataclass(frozen=True, slots=True)
class Leak:
    """A secret found where it must not be: which one, where, and in what form."""

    secret: str
    """The variable that holds it (a key of :data:`FAKE_SECRETS`)."""
    where: str
    """A file's path, or what printed the text."""
    form: str

    def __str__(self) -> str:
        """One line for the failure report."""
        return f"{self.where}: {self.secret} ({self.form})"


def forms(secret: str) -> dict[str, bytes]:
    r"""Every form ``secret`` may be written in, by name, as UTF-8 bytes.

    The encodings a URL gives it (urllib's ``quote`` and ``quote_plus``,
    httpx's path, query and ``params=``, upper- or lower-case hex), each as it
    is, as a JSON string holds it (``\uXXXX``-escaped or not, upper- or
    lower-case hex) and as JSON carried in a JSON string holds it.
    """
    url = {
        "raw": secret,
        "percent-encoded by urllib quote(safe='')": quote(secret, safe=""),
        "percent-encoded by urllib quote()": quote(secret),
        "percent-encoded by urllib quote_plus()": quote_plus(secret),
        "percent-encoded by httpx in a path": httpx.URL(f"http://h/{secret}").raw_path.decode()[1:],
        "percent-encoded by httpx in a query": httpx.URL(f"http://h/?q={secret}").query.decode()[
            2:
        ],
        "percent-encoded by httpx params=": httpx.URL("http://h/", params={"q": secret})
        .query.decode()
        .removeprefix("q="),
    }
    for name, text in list(url.items()):
        url[f"{name}, lower-case hex"] = re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)
    found: dict[str, str] = {}
    for name, text in url.items():
        escaped = json.dumps(text)[1:-1]
        found[name] = text
        found[_label(name, "in a JSON string")] = json.dumps(text, ensure_ascii=False)[1:-1]
        found[_label(name, "\\uXXXX-escaped in a JSON string")] = escaped
        found[_label(name, "\\uXXXX-escaped in upper case in a JSON string")] = re.sub(
            r"\\u[0-9a-f]{4}", lambda m: "\\u" + m[0][2:].upper(), escaped
        )
        found[_label(name, "JSON in a JSON string")] = json.dumps(escaped)[1:-1]
    unique: dict[str, bytes] = {}
    for name, text in found.items():
        if text.encode() not in unique.values():
            unique[name] = text.encode()
    return unique


def _label(form: str, how: str) -> str:
    return how if form == "raw" else f"{form}, {how}"


_FORMS = {name: forms(value) for name, value in FAKE_SECRETS.items()}
_MARKERS = {name: tuple(m.encode() for m in markers) for name, markers in MARKERS.items()}


def scan_bytes(data: bytes, where: str) -> list[Leak]:
    """The fake secrets in ``data``, each in the first form that names how it is written."""
    leaks = []
    for name, markers in _MARKERS.items():
        fragments = [marker for marker in markers if marker in data]
        if not fragments:
            continue  # every form holds both markers: none of them is here
        form = next((f for f, needle in _FORMS[name].items() if needle in data), None)
        if form is None:
            shown = ", ".join(repr(f.decode()) for f in fragments)
            form = f"part of it: {shown}, the rest cut off or redacted"
        leaks.append(Leak(name, where, form))
    return leaks


def scan_text(text: str, where: str) -> list[Leak]:
    """The fake secrets in what a command printed."""
    return scan_bytes(text.encode("utf-8", "surrogateescape"), where)


def scan_tree(root: Path) -> list[Leak]:
    """The fake secrets in every file under ``root``, and in the names of its files."""
    leaks = []
    for directory, dirs, files in os.walk(root):  # links are not followed
        for name in [*dirs, *files]:
            leaks += scan_text(name, f"the name of {Path(directory, name)}")
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue  # a link, a socket, a fifo: nothing was written in it
            try:
                data = path.read_bytes()
            except OSError:
                continue  # a test made it unreadable, or removed it
            leaks += scan_bytes(data, str(path))
    return leaks


def _check_markers() -> None:
    # The scan relies on it: a marker missing from a form would hide that form.
    for name, secret_forms in _FORMS.items():
        for form, needle in secret_forms.items():
            missing = [m for m in _MARKERS[name] if m not in needle]
            if missing:
                raise AssertionError(f"{name}: {form} lacks the marker {missing[0]!r}")


_check_markers()
