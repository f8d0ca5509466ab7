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

The target (image, zone, Secrets, user, resources) is checked in
:mod:`agentops.ops._k8starget`; a schedule is translated in
:mod:`agentops.ops._k8sschedule`.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, Any

from agentops.errors import ConfigError
from agentops.llm.routes import models_of
from agentops.ops._k8sschedule import kubernetes_schedule
from agentops.ops._k8starget import DEFAULT_USER, LABEL, Resources, Target, local_zone_name
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
    "STORE_PASSWORD_KEY",
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
STORE_PASSWORD_KEY = "password"  # noqa: S105 - a key's name, not a password
"""The key of that Secret holding the store's password, if any: libpq's PGPASSWORD."""

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

_HASH_CHARS = 8


def cronjob_name(agent: str) -> str:
    """The CronJob's name for ``agent``: ``_`` becomes ``-``; cut, with a hash, when too long.

    The same agent always gets the same name. A name that would end with
    ``-`` or be longer than :data:`NAME_MAX` keeps its start and ends with
    eight hex digits of the agent name's SHA-256.
    """
    name = agent.replace("_", "-")
    if len(name) <= NAME_MAX and LABEL.fullmatch(name):
        return name
    digest = hashlib.sha256(agent.encode()).hexdigest()[:_HASH_CHARS]
    return f"{name[: NAME_MAX - _HASH_CHARS - 1].rstrip('-')}-{digest}"


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


def _secret_key(secret: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    # Not optional but where said: a pod whose Secret or key is missing does
    # not start, and says so in its events, rather than run without a store or a key.
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"secretKeyRef": ref}


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
        # Optional: the URL may sign in without one (.pgpass, trust).
        {
            "name": "PGPASSWORD",
            "valueFrom": _secret_key(target.secret, STORE_PASSWORD_KEY, optional=True),
        },
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
