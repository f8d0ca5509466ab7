"""Headless Chromium for tests that look at a page as a browser renders it.

Debian's ``chromium`` is installed by the tests themselves when it is missing
(``apt-get``, as root): the machine needs nothing but Debian's mirrors. When
it cannot be installed (not root, offline) the tests skip saying why, except
under CI (``CI=true``), where a browser test that cannot run is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

INSTALL_TIMEOUT_S = 1800
"""apt-get fetching Chromium and its libraries from a slow mirror."""

LOCK_TIMEOUT_S = 600
"""How long apt-get waits for dpkg's lock, held by another apt-get."""

BROWSER_TIMEOUT_S = 120

FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root in a container: no user namespaces
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium_or_skip() -> str:
    """The path of ``chromium``, installed with apt-get if missing; skip (or fail in CI) if not."""
    found = shutil.which("chromium")
    if found:
        return found
    reason = _install()
    found = shutil.which("chromium")
    if found:
        return found
    reason = f"headless Chromium is needed and {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)
    raise AssertionError  # unreachable: skip raises


def _install() -> str:
    if os.geteuid() != 0:
        return "chromium is not installed, and only root may apt-get install it"
    if shutil.which("apt-get") is None:
        return "chromium is not installed, and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (a neighbour's set-up) may hold dpkg's lock: wait for it.
    wait = f"DPkg::Lock::Timeout={LOCK_TIMEOUT_S}"
    for command in (
        ["apt-get", "-o", wait, "update"],
        ["apt-get", "-o", wait, "install", "-y", "chromium"],
    ):
        try:
            done = subprocess.run(
                command,
                env=env,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{' '.join(command)} took more than {INSTALL_TIMEOUT_S}s"
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            return f"{' '.join(command)} failed (exit {done.returncode}): {tail}"
    return "apt-get install chromium left no chromium on PATH"


@dataclass
class Chromium:
    """One headless browser binary, and a profile directory of its own."""

    path: str
    profile: Path

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.path, *FLAGS, f"--user-data-dir={self.profile}", *args],
            capture_output=True,
            text=True,
            timeout=BROWSER_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done

    def dump_dom(self, page: Path) -> str:
        """The DOM of ``page`` after the browser parsed and laid it out, serialised."""
        return self._run("--dump-dom", page.resolve().as_uri()).stdout

    def screenshot(self, page: Path, png: Path, *, size: str = "1200,2000") -> bytes:
        """A PNG of ``page`` as the browser paints it."""
        self._run(f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri())
        return png.read_bytes()

    def measure(self, page: Path, script: str, *, width: int, height: int = 900) -> object:
        """What ``script`` returns about ``page`` laid out in a window ``width`` pixels wide.

        The page is shown in a frame of that width (headless Chromium will
        not open a window narrower than 500 pixels, a phone is narrower), and
        ``script`` is the body of a function of ``doc`` (the page's document)
        and ``win`` (its window), run once the page has loaded. The page
        itself runs no script: its CSP forbids it; the frame around it reads it.
        """
        frame = page.with_name(f"{page.stem}.measure-{width}.html")
        frame.write_text(
            "<!DOCTYPE html><html><body style='margin:0'>"
            f"<iframe id='page' src='{page.name}' "
            f"style='border:0;width:{width}px;height:{height}px'></iframe>"
            "<script>document.getElementById('page').addEventListener('load', () => {"
            "const win = document.getElementById('page').contentWindow;"
            "const doc = win.document;"
            f"const found = (function (doc, win) {{ {script} }})(doc, win);"
            "document.body.setAttribute('data-measured', JSON.stringify(found));"
            "});</script></body></html>"
        )
        dom = self._run(
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            "--window-size=1400,1000",
            "--dump-dom",
            frame.resolve().as_uri(),
        ).stdout
        (body,) = parse_dom(dom).find_all("body")
        return json.loads(body.attrs["data-measured"])


@pytest.fixture(scope="module")
def chromium() -> Chromium:
    """Headless Chromium, installed if need be (once); a profile per test module."""
    path = chromium_or_skip()
    with tempfile.TemporaryDirectory(prefix="agentops-chromium-") as profile:
        yield Chromium(path, Path(profile))


@dataclass
class Element:
    """An element of a parsed DOM: its tag, attributes, text and children."""

    tag: str
    attrs: dict[str, str]
    children: list[Element]
    text: str = ""

    def iter(self, tag: str | None = None):
        """The element itself and every one below it (only those named ``tag``, if given)."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def find_all(self, tag: str, **attrs: str) -> list[Element]:
        """Every element below named ``tag`` whose attributes include ``attrs`` (``class_`` too)."""
        wanted = {key.rstrip("_"): value for key, value in attrs.items()}
        return [
            element
            for element in self.iter(tag)
            if all(_has(element, key, value) for key, value in wanted.items())
        ]

    def find(self, tag: str, **attrs: str) -> Element:
        """The one element :meth:`find_all` finds (an assertion if there is not exactly one)."""
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}>"
        return found[0]

    @property
    def all_text(self) -> str:
        """The text of this element and of every one below it."""
        return self.text + "".join(child.all_text for child in self.children)


def _has(element: Element, key: str, value: str) -> bool:
    actual = element.attrs.get(key)
    if key == "class":
        return actual is not None and value in actual.split()
    return actual == value


_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {}, [])
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, [])
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}, []))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        parent = self.stack[-1]
        if parent.children:
            parent.children.append(Element("#text", {}, [], data))
        else:
            parent.text += data


def parse_dom(html: str) -> Element:
    """A tree of :class:`Element` from serialised HTML (as ``--dump-dom`` prints it)."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root
