"""Where ``agentops export k8s`` CronJobs run: the image, zone, Secrets, user and resources.

Each value is checked as the :class:`Target` is made, so that what
Kubernetes or the pod would refuse later is refused now, one line each.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from agentops._infra.files import SIDE_FILE_LIMIT, read_regular
from agentops.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_USER = 10001
"""The user id the pod runs as unless told: not root, and outside most images' own users."""

_QUANTITY = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>[KMGTPE]i|[mkMGTPE]?)")
_SUFFIX = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    **{s: Decimal(1000) ** (n + 1) for n, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(1024) ** (n + 1) for n, s in enumerate("KMGTPE")},
}
LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
"""A DNS label (RFC 1123), as Kubernetes names most things."""
_SUBDOMAIN = re.compile(rf"{LABEL.pattern}(?:\.{LABEL.pattern})*")
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    rf"(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
"""An image reference as the OCI distribution spec writes it: [host[:port]/]path[:tag][@digest]."""
_MAX_ID = 2**31 - 1  # Kubernetes takes an int64; a user id every runtime and image tool takes
_MAX_EXIT_CODE = 255


def quantity(text: str, *, option: str) -> Decimal:
    """A Kubernetes quantity (``100m``, ``0.5``, ``256Mi``, ``1G``) as a number; UsageError if not.

    Decimal exponents (``1e3``) are refused though Kubernetes takes them:
    nobody means them for CPU or memory, and a typo should not become one.
    """
    found = _QUANTITY.fullmatch(text)
    if found is None or Decimal(found["number"]) == 0:
        raise UsageError(
            f"{option} {text!r} is not a Kubernetes quantity such as 250m, 0.5, 512Mi or 1Gi "
            "(a positive number, then m, k, M, G, T, P, E or Ki, Mi, Gi...)"
        )
    return Decimal(found["number"]) * _SUFFIX[found["suffix"]]


@dataclass(frozen=True, slots=True)
class Resources:
    """The pod's CPU and memory: requests (what it is scheduled for) and limits (its ceiling).

    Each is a Kubernetes quantity, or None to leave it out (no CPU limit is
    the default: a throttled run only takes longer, while a memory limit
    keeps one agent from starving the node). A request above its limit is
    refused, as Kubernetes would refuse it.
    """

    cpu_request: str | None = "100m"
    memory_request: str | None = "128Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = "512Mi"

    def __post_init__(self) -> None:
        """Refuse a quantity Kubernetes would refuse, or a request above its limit (exit 2)."""
        for resource in ("cpu", "memory"):
            request, limit = (
                getattr(self, f"{resource}_request"),
                getattr(self, f"{resource}_limit"),
            )
            asked = None if request is None else quantity(request, option=f"--{resource}-request")
            most = None if limit is None else quantity(limit, option=f"--{resource}-limit")
            if asked is not None and most is not None and asked > most:
                raise UsageError(
                    f"--{resource}-request {request} is more than --{resource}-limit {limit}"
                )

    def document(self) -> dict[str, dict[str, str]]:
        """``resources`` of the container: only what is set."""
        found: dict[str, dict[str, str]] = {}
        for kind in ("requests", "limits"):
            values = {
                resource: value
                for resource in ("cpu", "memory")
                if (value := getattr(self, f"{resource}_{kind[:-1]}")) is not None
            }
            if values:
                found[kind] = values
        return found


def _check_image(image: str) -> None:
    """Refuse (2) what no runtime pulls: not printable ASCII, a space, no image reference."""
    if not image or not (image.isascii() and image.isprintable()):
        raise UsageError(f"--image must name an image in printable ASCII, no spaces, got {image!r}")
    if any(char.isspace() for char in image):
        raise UsageError(f"--image must name an image without spaces, got {image!r}")
    if _IMAGE.fullmatch(image) is None:
        raise UsageError(
            f"--image {image!r} is not an image reference such as "
            "registry.example.org/team/agents:1.4 (lowercase path, then :tag or @digest)"
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where the CronJobs run and what the cluster gives them; checked as it is made."""

    image: str
    """The image holding agentops (on its PATH) and the project at ``home``."""
    time_zone: str
    """The IANA zone the schedules are read in (``spec.timeZone``, and ``TZ`` in the pod)."""
    secret: str
    """The Secret holding the store URL under ``url``."""
    keys_secret: str
    """The Secret holding the model providers' keys, each under its variable's name."""
    home: str
    """The project's directory inside the image, passed as ``--home``."""
    namespace: str | None = None
    """None: the namespace kubectl applies them to."""
    user: int = DEFAULT_USER
    """The user id (and group id) the pod runs as: never 0, root."""
    resources: Resources = field(default_factory=Resources)
    skip_exit_code: int = 0
    """The exit code of a run skipped or stopped by policy: 0 ends its Job successfully."""

    def __post_init__(self) -> None:
        """Refuse what Kubernetes or the pod would refuse later, one line each (exit 2)."""
        if not 0 < self.user <= _MAX_ID:
            raise UsageError(
                f"--user must be a user id from 1 to {_MAX_ID} (not root), got {self.user}"
            )
        if not 0 <= self.skip_exit_code <= _MAX_EXIT_CODE:
            raise UsageError(
                f"--skip-exit-code must be from 0 to {_MAX_EXIT_CODE}, got {self.skip_exit_code}"
            )
        _check_image(self.image)
        if self.namespace is not None and not _is_label(self.namespace, 63):
            raise UsageError(
                f"--namespace {self.namespace!r} is not a namespace name: at most 63 "
                "lowercase letters, digits and '-', starting and ending with a letter or digit"
            )
        for option, secret in (("--secret", self.secret), ("--keys-secret", self.keys_secret)):
            if not (_SUBDOMAIN.fullmatch(secret) and len(secret) <= 253):  # noqa: PLR2004
                raise UsageError(
                    f"{option} {secret!r} is not a Secret name: at most 253 lowercase letters, "
                    "digits, '-' and '.', starting and ending with a letter or digit"
                )
        if (
            not self.home.startswith("/")
            or any(char.isspace() for char in self.home)
            or not _is_text(self.home)
        ):
            raise UsageError(f"--image-home must be an absolute path, got {self.home!r}")
        if not _known_zone(self.time_zone):
            raise UsageError(
                f"--time-zone {self.time_zone!r} is not an IANA time zone such as Europe/Paris"
            )


def _is_text(value: str) -> bool:
    """Printable, and valid Unicode (no byte an argv could not decode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def _is_label(name: str, most: int) -> bool:
    return bool(LABEL.fullmatch(name)) and len(name) <= most


def _known_zone(name: str) -> bool:
    """Whether ``name`` is a zone both zoneinfo and Kubernetes take."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    # "Local" (any case) means the controller's own zone to Kubernetes, which refuses it;
    # posix/ and right/ are copies (right/ counting leap seconds), Factory is no place.
    if name.lower() in {"local", "localtime", "factory"} or name.startswith(("posix/", "right/")):
        return False
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def local_zone_name(
    environ: Mapping[str, str],
    *,
    localtime: Path = Path("/etc/localtime"),
    timezone_file: Path = Path("/etc/timezone"),
) -> str:
    """The IANA name of the zone cron reads schedules in here (see ``cron_zone``).

    ``$TZ`` if set, else the zone ``/etc/localtime`` links to (or Debian's
    ``/etc/timezone`` names); ``Etc/UTC`` when there is no ``/etc/localtime``,
    as the C library then uses UTC. :class:`ConfigError` when the zone has no
    name to give Kubernetes: a wrong guess would move every run by hours.
    """
    hint = "pass --time-zone, such as --time-zone Europe/Paris"
    name = environ.get("TZ", "").lstrip(":")
    if name:
        if _known_zone(name):
            return name
        raise ConfigError(f"TZ={name!r} is not a time zone this machine knows: {hint}")
    if not localtime.exists():
        return "Etc/UTC"
    # A link into a zoneinfo tree names the zone (posix/X is X; right/X is not X).
    _, found, key = Path(os.path.realpath(localtime)).as_posix().partition("/zoneinfo/")
    key = key.removeprefix("posix/")
    if found and not key.startswith("right/") and _known_zone(key):
        return key
    try:
        raw = read_regular(timezone_file, limit=SIDE_FILE_LIMIT, follow_links=True) or b""
        named = raw.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        named = ""
    if named and _known_zone(named):
        return named
    raise ConfigError(f"cannot tell the name of this machine's time zone ({localtime}): {hint}")
