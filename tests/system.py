"""Tools from Debian's packages that some tests need, installed by the suite itself.

``ensure_tool("cron", package="cron")`` returns the tool's path, installing
the package with apt-get when it is missing and the suite runs as root (as in
CI). Elsewhere it skips the test, saying why; under ``CI=true`` it fails
instead, so a CI run never passes by skipping what it was meant to test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

__all__ = ["ensure_tool", "give_up", "install_package"]

_APT_TIMEOUT_S = 900


def ensure_tool(binary: str, *, package: str) -> str:
    """The path of ``binary``, installing Debian's ``package`` first if need be."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if found:
        return found
    install_package(package)
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if not found:
        give_up(f"{package} is installed but there is no {binary}")
    return found


def install_package(package: str) -> None:
    """Install Debian's ``package`` with apt-get (as root), or skip (fail under CI) saying why."""
    if os.geteuid() != 0:
        give_up(f"{package} is missing and only root may install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
    ):
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT_S, check=False
        )
        if result.returncode != 0:
            give_up(f"{' '.join(command)} failed: {result.stderr.strip()[-300:]}")


def give_up(why: str) -> NoReturn:
    """Skip the test saying why; under ``CI=true`` fail it instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must not skip this: {why}")
    pytest.skip(why)
