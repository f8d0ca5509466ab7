"""``agentops export k8s``: a Kubernetes CronJob for each scheduled agent.

Each CronJob runs what a crontab line runs, ``agentops --home HOME run AGENT
--scheduled``, in an image that holds agentops and the project. What the
cluster adds is made to fit what agentops already does:

- **one run per tick**: ``concurrencyPolicy: Forbid``, and ``TZ`` in the pod
  set to the CronJob's ``timeZone``, so the run claims the tick the
  controller started it for (:func:`agentops.project.schedule.previous_run` reads
  the pod's zone);
- **no retries by Kubernetes**: ``backoffLimit: 0`` and ``restartPolicy:
  Never``. agentops retries transient failures inside the run; a second pod
  would be a second run of the same tick;
- **agentops stops its own runs**: the Job's ``activeDeadlineSeconds`` is
  :func:`active_deadline_s`, past the run's hard deadline, so the run's
  timeout is recorded as one before the cluster kills anything; the
  Kubernetes deadline is only a backstop that keeps a pod stuck before the
  run began (pulling its image, say) from blocking every later tick;
- **a stop is clean**: ``terminationGracePeriodSeconds`` is
  :func:`termination_grace_s`, longer than a stopped run can take, so a
  drained node's SIGTERM is recorded as ``interrupted`` with its journal;
- **one shared store**: ``AGENTOPS_STORE_URL`` comes from a Secret (key
  ``url``). Without a shared store each pod would start from empty state: no
  ledger, no limits, no circuit. The keys of the model providers the agent
  uses come from another Secret, each under its variable's name (a key and a
  database password are rotated apart, by different people).

- **a skip is not a failure**: a run skipped or stopped by policy (paused,
  circuit open, tick taken, budget spent) exits with
  ``AGENTOPS_SKIP_EXIT_CODE`` (``Target.skip_exit_code``, 0 by default), so
  its Job succeeds instead of raising a failed-Job alert every tick;
- **the log is the pod's too**: ``AGENTOPS_LOG_STDOUT=1`` writes every line
  of the agent's log to stdout as well, for ``kubectl logs`` and the
  cluster's log collector.

The pod passes the Pod Security Standards' "restricted" profile: it runs as
a user id that is not root (``runAsNonRoot``), with no privilege
escalation, every capability dropped, the runtime's seccomp profile, and no
service account token (agents do not talk to the Kubernetes API). Its root
file system is read-only: what agentops writes (``state/``, ``logs/`` under
the project, and ``/tmp``) is on ``emptyDir`` volumes (:data:`WRITABLE`), so
only the store outlives the pod. Its CPU and memory requests and limits are
the target's.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentops._infra.files import SIDE_FILE_LIMIT, read_regular
from agentops.errors import ConfigError, UsageError
from agentops.llm.routes import models_of
from agentops.ops._yaml import dump_all
from agentops.run.deadline import hard_deadline_s
from agentops.run.options import SKIP_EXIT_CODE_ENV
from agentops.run.services import LOG_STDOUT_ENV
from agentops.store import STORE_URL_ENV

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from agentops.project.config import ProjectConfig
    from agentops.project.home import AgentSpec

__all__ = [
    "AGENT_ANNOTATION",
    "DEFAULT_USER",
    "NAME_MAX",
    "SAVE_MARGIN_S",
    "STARTING_DEADLINE_S",
    "START_MARGIN_S",
    "STORE_URL_KEY",
    "WRITABLE",
    "Resources",
    "Target",
    "active_deadline_s",
    "cronjob",
    "cronjob_name",
    "cronjobs",
    "kubernetes_schedule",
    "local_zone_name",
    "render",
    "termination_grace_s",
]

NAME_MAX = 52
"""The longest CronJob name: its Jobs are named ``<name>-<minutes since 1970>`` (63 at most)."""

AGENT_ANNOTATION = "agentops.dev/agent"
"""The annotation holding the agent's own name (up to 100 characters: too long for a label)."""

STORE_URL_KEY = "url"
"""The key of the Secret that holds the store URL."""

STARTING_DEADLINE_S = 300
"""How late a CronJob may start a run; a start missed by more is skipped, as cron skips it.

Five minutes lets a slow or restarting controller still start the run. A
longer one brings nothing for a frequent schedule: the controller only ever
starts the most recent missed tick, never one per tick missed.
"""

START_MARGIN_S = 120
"""Time for a pod to be scheduled, pull its image and start Python before the run's clock starts."""

SAVE_MARGIN_S = 10
"""Time for a stopped run to save its state and say why, after its code let go."""

WRITABLE = {"state": "state", "logs": "logs"}
"""The project's directories agentops writes, by volume name: each an ``emptyDir``.

``/tmp`` is one too (volume ``tmp``), for what a library puts there.
"""

DEFAULT_USER = 10001
"""The user id the pod runs as unless told: not root, and outside most images' own users."""

_QUANTITY = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>[KMGTPE]i|[mkMGTPE]?)")
_SUFFIX = {
    "m": Decimal("0.001"),
    "": Decimal(1),
    **{s: Decimal(1000) ** (n + 1) for n, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(1024) ** (n + 1) for n, s in enumerate("KMGTPE")},
}
_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(rf"{_LABEL.pattern}(?:\.{_LABEL.pattern})*")
_HASH_CHARS = 8
_MAX_ID = 2**31 - 1  # Kubernetes takes an int64; a user id every runtime and image tool takes
_MAX_EXIT_CODE = 255
_REBOOT = "@reboot"


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
        if not self.image or not (self.image.isascii() and self.image.isprintable()):
            raise UsageError(
                f"--image must name an image in printable ASCII, no spaces, got {self.image!r}"
            )
        if any(char.isspace() for char in self.image):
            raise UsageError(f"--image must name an image without spaces, got {self.image!r}")
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
    return bool(_LABEL.fullmatch(name)) and len(name) <= most


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


def cronjob_name(agent: str) -> str:
    """The CronJob's name for ``agent``: ``_`` becomes ``-``; cut, with a hash, when too long.

    The same agent always gets the same name. A name that would end with
    ``-`` or be longer than :data:`NAME_MAX` keeps its start and ends with
    eight hex digits of the agent name's SHA-256.
    """
    name = agent.replace("_", "-")
    if len(name) <= NAME_MAX and _LABEL.fullmatch(name):
        return name
    digest = hashlib.sha256(agent.encode()).hexdigest()[:_HASH_CHARS]
    return f"{name[: NAME_MAX - _HASH_CHARS - 1].rstrip('-')}-{digest}"


def kubernetes_schedule(expr: str, *, agent: str) -> str:
    """``expr`` as ``spec.schedule``, if Kubernetes runs it when cron would.

    Kubernetes takes cron's macros but ``@reboot``, and reads five fields as
    robfig/cron does, which differs from Debian's cron in two ways that are
    refused (:class:`ConfigError`, naming the agent): 7 is not Sunday, and
    day-of-month and day-of-week restricted together are ORed unless one is
    ``*`` (cron: unless one starts with ``*``, so ``*/2`` ANDs).
    """
    if expr == _REBOOT:
        raise ConfigError(
            f"{agent}: schedule '@reboot' has no Kubernetes equivalent (a CronJob starts runs "
            "by the clock, not when a machine boots): give it a clock schedule, or no schedule",
            agent=agent,
        )
    if expr.startswith("@"):
        return expr
    _minute, _hour, dom, _month, dow = expr.split()
    for element in dow.split(","):
        if any(bound.isdigit() and int(bound) == 7 for bound in _bounds(element)):  # noqa: PLR2004
            raise ConfigError(
                f"{agent}: schedule {expr!r} uses 7 for Sunday, which Kubernetes refuses: "
                "write 0 or sun",
                agent=agent,
            )
    cron_and = dom.startswith("*") or dow.startswith("*")
    kubernetes_and = _robfig_star(dom) or _robfig_star(dow)
    if cron_and != kubernetes_and:
        both, either = "days matching both fields", "days matching either"
        raise ConfigError(
            f"{agent}: schedule {expr!r} picks other days in Kubernetes than in cron, which "
            f"runs it on {both if cron_and else either} of day-of-month and day-of-week; "
            f"Kubernetes on {either if cron_and else both} (to it, '*/N' restricts the days)",
            agent=agent,
        )
    return expr


def _bounds(element: str) -> list[str]:
    """The values a range element names (``5-7/2`` -> 5 and 7), its step left out."""
    return element.split("/", maxsplit=1)[0].split("-")


def _robfig_star(field: str) -> bool:
    # robfig/cron marks a field "any" only for an element of * with no step above 1.
    for element in field.split(","):
        values, _, step = element.partition("/")
        if values == "*" and (not step or int(step) <= 1):
            return True
    return False


def active_deadline_s(timeout_s: float) -> int:
    """The Job's ``activeDeadlineSeconds``: the run's hard deadline, plus time to start.

    agentops ends its own run by the hard deadline (the timeout, twice the
    grace, a second: :func:`agentops.run.deadline.hard_deadline_s`) and records a
    timeout; the pod must outlive that, and its clock starts earlier, when
    the Job is created (:data:`START_MARGIN_S`).
    """
    return math.ceil(hard_deadline_s(timeout_s)) + START_MARGIN_S


def termination_grace_s(timeout_s: float) -> int:
    """The pod's ``terminationGracePeriodSeconds``: longer than a stopped run can take.

    After SIGTERM a side effect in flight has the grace to finish, and agent
    code that swallows the stop is abandoned after twice the grace (and a
    second); then the run saves its state (:data:`SAVE_MARGIN_S`). Only
    then may the kubelet's SIGKILL come.
    """
    stop_s = hard_deadline_s(timeout_s) - timeout_s
    return math.ceil(stop_s) + SAVE_MARGIN_S


def _key_variables(spec: AgentSpec, project: ProjectConfig) -> list[str]:
    """The environment variables holding the keys of the providers the agent's models use."""
    found = set()
    for name in models_of(spec.config):
        model = project.models.get(name)
        variable = project.providers[model.provider].api_key_env if model else None
        if variable:
            found.add(variable)
    return sorted(found)


def _secret_key(secret: str, key: str) -> dict[str, Any]:
    # Not optional: a pod whose Secret or key is missing does not start, and
    # says so in its events, rather than run without a store or a key.
    return {"secretKeyRef": {"name": secret, "key": key}}


def cronjob(spec: AgentSpec, project: ProjectConfig, target: Target) -> dict[str, Any]:
    """The CronJob (batch/v1) that runs the scheduled agent ``spec``, as a plain document."""
    if spec.config.schedule is None:
        raise ValueError(f"{spec.name} has no schedule: it has no CronJob")
    name = cronjob_name(spec.name)
    timeout = spec.config.timeout

    def meta() -> dict[str, Any]:
        return {
            "labels": {"app.kubernetes.io/name": "agentops", "app.kubernetes.io/instance": name},
            "annotations": {AGENT_ANNOTATION: spec.name},
        }

    env: list[dict[str, Any]] = [
        {"name": STORE_URL_ENV, "valueFrom": _secret_key(target.secret, STORE_URL_KEY)},
        {"name": "TZ", "value": target.time_zone},
    ]
    env += [
        {"name": variable, "valueFrom": _secret_key(target.keys_secret, variable)}
        for variable in _key_variables(spec, project)
    ]
    env += [
        {"name": SKIP_EXIT_CODE_ENV, "value": str(target.skip_exit_code)},
        {"name": LOG_STDOUT_ENV, "value": "1"},
    ]
    mounts = [
        {"name": volume, "mountPath": f"{target.home.rstrip('/')}/{directory}"}
        for volume, directory in WRITABLE.items()
    ]
    mounts.append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 - a volume of the pod's own
    container = {
        "name": "agentops",
        "image": target.image,
        "command": ["agentops"],
        "args": ["--home", target.home, "run", spec.name, "--scheduled"],
        "env": env,
        "resources": target.resources.document(),
        "volumeMounts": mounts,
        "securityContext": {  # the user and seccomp profile: the pod's
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": termination_grace_s(timeout),
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": target.user,
            "runAsGroup": target.user,
            "fsGroup": target.user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": mount["name"], "emptyDir": {}} for mount in mounts],
    }
    job = {
        "backoffLimit": 0,
        "activeDeadlineSeconds": active_deadline_s(timeout),
        "template": {"metadata": meta(), "spec": pod},
    }
    metadata = {"name": name, **({"namespace": target.namespace} if target.namespace else {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata | meta(),
        "spec": {
            "schedule": kubernetes_schedule(spec.config.schedule, agent=spec.name),
            "timeZone": target.time_zone,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_S,
            # The store keeps every run's record: one finished Job is enough to
            # look at, and a few failed ones keep their pod's one-line reason.
            "successfulJobsHistoryLimit": 1,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": meta(), "spec": job},
        },
    }


def cronjobs(
    specs: Sequence[AgentSpec], project: ProjectConfig, target: Target
) -> list[dict[str, Any]]:
    """A CronJob for each agent of ``specs`` with a schedule, sorted by agent name.

    :class:`ConfigError` for the first agent Kubernetes cannot run as cron
    would, or for two agents whose CronJob names would be the same.
    """
    documents = []
    named: dict[str, str] = {}
    for spec in sorted(specs, key=lambda spec: spec.name):
        if spec.config.schedule is None:
            continue  # run by hand: nothing to schedule
        name = cronjob_name(spec.name)
        if name in named:
            raise ConfigError(
                f"agents {named[name]!r} and {spec.name!r} would both be CronJob {name!r}: "
                "rename one",
                agent=spec.name,
            )
        named[name] = spec.name
        documents.append(cronjob(spec, project, target))
    return documents


def render(documents: Sequence[Mapping[str, Any]]) -> str:
    """The documents as one YAML stream for ``kubectl apply -f -``; empty for none."""
    if not documents:
        return ""
    return dump_all(
        documents,
        comments=[
            "Generated by `agentops export k8s`: apply with `kubectl apply -f FILE`.",
            "One CronJob per scheduled agent; each runs `agentops run AGENT --scheduled`.",
        ],
    )
