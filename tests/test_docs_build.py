"""The documentation site builds, offline, with warnings as errors, and says what the program says.

The build runs Sphinx as CI would (``python -m sphinx -W --keep-going``). A
broken link, a page out of the table of contents, a configuration key the
reference does not explain or a section it does not show: each is a warning,
and so fails here.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from suite import made_once

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import agentops_docs  # noqa: E402 - the extension, from the docs' own folder

from agentops.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once for the session (whichever workers ask), as CI builds it."""

    def build(out: Path) -> None:
        done = subprocess.run(
            [
                *(sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html"),
                *("-d", str(out / "doctrees"), str(DOCS), str(out / "html")),
            ],
            capture_output=True,
            text=True,
            timeout=600,  # only bounds a hang
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    return made_once(tmp_path_factory.getbasetemp(), "docs-site", build) / "html"


def text_of(page: Path) -> str:
    """A page's text, as a reader sees it: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_the_site_builds_without_a_warning(site):
    """Every page is there, from the first to the Python API."""
    for page in ("index", "getting-started", "reference/cli", "reference/api", "development"):
        assert (site / f"{page}.html").is_file(), page


COMMANDS = [path for path, _command in agentops_docs.commands()]


def test_the_reference_walks_every_command():
    """The group, each command and each subcommand of a group (state show, store copy...)."""
    names = {" ".join(path) for path in COMMANDS}
    expected = {"", "run", "status", "state show", "review approve", "store copy", "export k8s"}
    assert expected <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("agentops", *path)))
def test_the_reference_says_what_help_says(path, site):
    """`agentops COMMAND --help` and the command's section are one text, made by one function."""
    result = CliRunner().invoke(
        main, [*path, "--help"], prog_name="agentops", terminal_width=agentops_docs.HELP_WIDTH
    )
    assert result.exit_code == 0, result.output
    assert result.output == agentops_docs.help_text(path) + "\n"
    page = text_of(site / "reference" / "cli.html")
    assert agentops_docs.help_text(path) in page


def test_every_configuration_section_is_shown(site):
    """Each section of agent.toml and agentops.toml has its table, with each key and default."""
    page = text_of(site / "reference" / "configuration.html")
    for root in agentops_docs.ROOTS:
        for model in agentops_docs.sections(root).values():
            for key in agentops_docs.keys(model):
                assert key in page, key
    assert '"10m"' in page  # the default timeout, as people write it


def test_the_api_reference_follows_all(site):
    """Every name `agentops.__all__` exports has its entry in the Python API page."""
    import agentops  # noqa: PLC0415

    page = (site / "reference" / "api.html").read_text(encoding="utf-8")
    for name in agentops.__all__:
        assert f'id="agentops.{name}"' in page, name


def test_the_docs_tools_are_pinned_to_compatible_releases():
    """Each docs requirement takes only compatible releases (~=): a new major is a decision."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert extras["docs"], "the docs extra names its tools"
    assert all("~=" in requirement for requirement in extras["docs"]), extras["docs"]
    assert "agentops[docs]" in extras["test"], "the tests build the docs"
