"""``agentops export``: the scheduled agents, written for a scheduler other than cron."""

from __future__ import annotations

import os

import click

from agentops.cli._common import SuggestingGroup, every_agent, project_of, reports_errors, say
from agentops.ops.k8s import DEFAULT_USER, Resources

_DEFAULT = Resources()

__all__ = ["export", "export_k8s"]


@click.group(cls=SuggestingGroup)
def export() -> None:
    """Print the scheduled agents for another scheduler: Kubernetes (k8s)."""


@export.command(name="k8s")
@click.option(
    "--image",
    required=True,
    metavar="IMAGE",
    help="The image to run: agentops on its PATH, this project at --image-home.",
)
@click.option(
    "--namespace",
    metavar="NS",
    help="The CronJobs' namespace (default: none written, so kubectl's current one).",
)
@click.option(
    "--time-zone",
    metavar="TZ",
    help="The IANA zone schedules are read in (default: cron's here: $TZ, else this machine's).",
)
@click.option(
    "--secret",
    default="agentops-store",
    metavar="NAME",
    show_default=True,
    help="The Secret holding the store URL, under the key `url`.",
)
@click.option(
    "--keys-secret",
    default="agentops-keys",
    metavar="NAME",
    show_default=True,
    help="The Secret holding model providers' keys, each under its variable's name.",
)
@click.option(
    "--image-home",
    default="/srv/agentops",
    show_default=True,
    metavar="PATH",
    help="Where the project is inside the image (the runs' --home).",
)
@click.option(
    "--user",
    type=click.IntRange(min=1, max=2**31 - 1),
    default=DEFAULT_USER,
    show_default=True,
    metavar="UID",
    help="The user (and group) id the pods run as: never root.",
)
@click.option(
    "--cpu-request",
    default=_DEFAULT.cpu_request,
    show_default=True,
    metavar="CPU",
    help="Requested CPU.",
)
@click.option(
    "--memory-request",
    default=_DEFAULT.memory_request,
    show_default=True,
    metavar="MEM",
    help="Requested memory.",
)
@click.option("--cpu-limit", metavar="CPU", help="CPU limit (default: none).")
@click.option(
    "--memory-limit",
    default=_DEFAULT.memory_limit,
    show_default=True,
    metavar="MEM",
    help="Memory limit.",
)
@click.option(
    "--skip-exit-code",
    type=click.IntRange(min=0, max=255),
    default=0,
    show_default=True,
    metavar="N",
    help="Exit code of a run skipped or stopped by policy (0: its Job succeeds).",
)
@click.pass_context
@reports_errors
def export_k8s(
    ctx: click.Context,
    *,
    image: str,
    namespace: str | None,
    time_zone: str | None,
    secret: str,
    keys_secret: str,
    image_home: str,
    user: int,
    cpu_request: str,
    memory_request: str,
    cpu_limit: str | None,
    memory_limit: str,
    skip_exit_code: int,
) -> None:
    """Print a Kubernetes CronJob per scheduled agent, for `kubectl apply -f -`.

    A YAML stream, one CronJob (batch/v1) per agent with a schedule, sorted
    by agent name: the same project gives the same text. Each is named after
    its agent ('_' becomes '-'; a name too long for Kubernetes is cut and
    ends with a hash), with the agent's name in the annotation
    agentops.dev/agent, and runs `agentops --home PATH run AGENT --scheduled`
    in IMAGE, as a crontab line would:

    \b
    - its schedule in --time-zone (spec.timeZone, and TZ in the pod, so each
      run claims the tick it was started for);
    - concurrencyPolicy Forbid; a start up to 5 minutes late, none later;
    - backoffLimit 0 and restartPolicy Never: agentops retries inside the
      run, and another pod would be another run;
    - activeDeadlineSeconds: the run's hard deadline (timeout, twice the
      grace, 1s) and 2 minutes to start the pod, so agentops records its
      own timeout first;
    - terminationGracePeriodSeconds: twice the grace, 1s and 10s to save,
      so a stopped run ends cleanly;
    - AGENTOPS_STORE_URL from the key `url` of --secret, so every run shares
      one store; the api_key_env of each provider the agent's models use
      from the key of that name in --keys-secret (a pod missing either does
      not start);
    - a run skipped or stopped by policy (paused, circuit open, tick taken,
      budget spent) exits --skip-exit-code (AGENTOPS_SKIP_EXIT_CODE), 0 by
      default, so its Job succeeds; the log goes to stdout too
      (AGENTOPS_LOG_STDOUT=1), for kubectl logs;
    - the Pod Security Standards' "restricted" profile: runAsNonRoot as
      --user, no privilege escalation, every capability dropped, seccomp
      RuntimeDefault, no service account token; a read-only root file
      system, with emptyDir volumes for state/ and logs/ under --image-home
      and for /tmp;
    - CPU and memory requests and limits from the options (a quantity as
      Kubernetes writes it: 250m, 0.5, 512Mi; a request above its limit is
      refused).

    A bad option value (an --image that is no image reference, an unknown
    or empty --time-zone, a Secret or namespace Kubernetes would refuse) is
    one line and exit 2. Refuses, with one line and exit 78 and printing
    nothing, an @reboot schedule, a schedule Kubernetes reads differently
    from cron, an agent that cannot be read, or a zone with no name (then
    pass --time-zone).
    Warns when this project keeps its state in files here: it does not move
    to the store by itself.
    """  # noqa: D301 - \b keeps click from rewrapping the list
    from agentops.ops.k8s import Target, cronjobs, local_zone_name, render  # noqa: PLC0415
    from agentops.store import STORE_URL_ENV  # noqa: PLC0415

    target = Target(
        image=image,
        time_zone=time_zone if time_zone is not None else local_zone_name(os.environ),
        secret=secret,
        keys_secret=keys_secret,
        home=image_home,
        namespace=namespace,
        user=user,
        resources=Resources(
            cpu_request=cpu_request,
            memory_request=memory_request,
            cpu_limit=cpu_limit,
            memory_limit=memory_limit,
        ),
        skip_exit_code=skip_exit_code,
    )
    project = project_of(ctx)
    specs = every_agent(project)  # a stream missing one would, with --prune, delete its CronJob
    documents = cronjobs(specs, project.config, target)
    if not documents:
        say("no agent has a schedule: there is nothing to export")
        return
    if not (os.environ.get(STORE_URL_ENV) or project.config.store.url):
        say(
            f"this project keeps its state in files ({project.state_dir}); the CronJobs use "
            f"the store of Secret {secret!r}, and that state does not move there by itself"
        )
    click.echo(render(documents), nl=False)
