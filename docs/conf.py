# ruff: noqa: INP001 - Sphinx reads this file by path
"""Sphinx configuration for the agentops documentation (MyST Markdown, the furo theme).

Build it with ``python -m sphinx -W --keep-going docs docs/_build/html``; it needs
no network. ``tests/test_docs_build.py`` builds it so, as part of the test suite.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import agentops  # noqa: E402 - after the path, as Sphinx configurations do

project = "agentops"
author = "the agentops authors"
copyright = "the agentops authors"  # noqa: A001 - the name Sphinx reads
release = agentops.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "agentops_docs",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 4
"""Links may name a heading: ``[exit codes](reference/exit-codes.md#under-cron)``."""

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"agentops {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
