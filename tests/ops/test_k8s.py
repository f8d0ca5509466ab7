"""`agentops export k8s`: a CronJob per scheduled agent, valid for Kubernetes, run as cron would.

The manifests are validated offline against Kubernetes' own schemas, as
``kubernetes-validate`` ships them (strict: an unknown field is an error), for
the oldest Kubernetes with ``spec.timeZone`` stable and the newest it knows.
"""

from __future__ import annotations

import copy
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentops.errors import ConfigError, UsageError
from agentops.guards.interrupts import grace_s
from agentops.ops.k8s import (
    NAME_MAX,
    Target,
    cronjob_name,
    cronjobs,
    kubernetes_schedule,
    local_zone_name,
)
from agentops.project.home import Project
from agentops.run.deadline import hard_deadline_s
from exported import AGENTS, IMAGE, LONG, container, env, export, pod, write_agents
from suite import Project as HomeOnDisk
from suite import invoke_cli

KUBERNETES = ("1.27", "1.37")
"""The first Kubernetes with spec.timeZone stable, and the newest the schemas cover."""


DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.fixture
def agents(project):
    return write_agents(project)


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    """The CronJobs of the AGENTS in Europe/Paris, by agent: exported once for the module."""
    home = tmp_path_factory.mktemp("k8s") / "home"
    (home / "agents").mkdir(parents=True)
    write_agents(HomeOnDisk(home))
    _, docs = export(
        lambda *args, env=None: invoke_cli(home, *args, env=env, where=__name__),
        "--time-zone",
        "Europe/Paris",
    )
    return {doc["metadata"]["annotations"]["agentops.dev/agent"]: doc for doc in docs}


# -- the stream ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_cronjob_is_valid_for_kubernetes(documents, version):
    """Each document passes Kubernetes' strict schema, with a name a CronJob may have."""
    import kubernetes_validate  # noqa: PLC0415 - jsonschema and the schemas: collection skips them

    for doc in documents.values():
        assert kubernetes_validate.validate(doc, version, strict=True) == version
        name = doc["metadata"]["name"]
        assert DNS_LABEL.fullmatch(name), name
        assert len(name) <= 52


@pytest.mark.usefixtures("agents")
def test_one_cronjob_per_scheduled_agent_sorted_by_name(invoke):
    """Agents without a schedule are left out; the rest come in order of their names."""
    _, docs = export(invoke, "--time-zone", "UTC")
    names = [doc["metadata"]["annotations"]["agentops.dev/agent"] for doc in docs]
    assert names == sorted(name for name, toml in AGENTS.items() if "schedule" in toml)
    assert {doc["kind"] for doc in docs} == {"CronJob"}
    assert {doc["apiVersion"] for doc in docs} == {"batch/v1"}


def test_names_map_underscores_and_cut_long_names_with_a_hash(documents):
    """`_` becomes `-`; a long name ends with a hash; the agent's name stays in an annotation."""
    assert documents["hourly"]["metadata"]["name"] == "hourly"
    assert documents["daily_digest"]["metadata"]["name"] == "daily-digest"
    long_name = documents[LONG]["metadata"]["name"]
    assert len(long_name) == NAME_MAX
    assert re.fullmatch(r"quarterly-report-for-the-board-and-everyone-[0-9a-f]{8}", long_name)
    for agent, doc in documents.items():
        for where in (
            doc,
            doc["spec"]["jobTemplate"],
            doc["spec"]["jobTemplate"]["spec"]["template"],
        ):
            assert where["metadata"]["annotations"] == {"agentops.dev/agent": agent}
            assert where["metadata"]["labels"] == {
                "app.kubernetes.io/name": "agentops",
                "app.kubernetes.io/instance": doc["metadata"]["name"],
            }


def test_each_cronjob_runs_its_agent_as_a_crontab_line_would(documents):
    """Schedule and zone, one run at a time, no retry by Kubernetes, `run AGENT --scheduled`."""
    for agent, doc in documents.items():
        spec = doc["spec"]
        assert spec["schedule"] == AGENTS[agent].split('"')[1]
        assert spec["timeZone"] == "Europe/Paris"
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] == 300
        assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
        assert pod(doc)["restartPolicy"] == "Never"
        assert pod(doc)["automountServiceAccountToken"] is False
        assert container(doc)["image"] == IMAGE
        assert container(doc)["command"] == ["agentops"]
        assert container(doc)["args"] == ["--home", "/srv/agentops", "run", agent, "--scheduled"]
        variables = env(doc)
        assert variables["AGENTOPS_STORE_URL"] == {
            "secretKeyRef": {"name": "agentops-store", "key": "url"}
        }
        assert variables["PGPASSWORD"] == {
            "secretKeyRef": {"name": "agentops-store", "key": "password", "optional": True}
        }, "a password kept out of the URL, as libpq reads it"
        assert variables["TZ"] == "Europe/Paris", "the run claims its tick in the same zone"
    assert documents["nightly"]["spec"]["schedule"] == "@daily"
    assert documents["weekdays"]["spec"]["schedule"] == "30 7 * * mon-fri"


@pytest.mark.parametrize(
    ("agent", "timeout", "active", "termination"),
    [("hourly", 300, 481, 71), ("weekdays", 600, 781, 71), ("nightly", 2, 127, 15)],
)
def test_deadlines_come_from_the_agents_timeout(documents, agent, timeout, active, termination):
    """The pod outlives the run's hard deadline, and a stop waits longer than a run's grace."""
    doc = documents[agent]
    assert doc["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == active
    assert active > hard_deadline_s(timeout), "agentops records its own timeout first"
    assert pod(doc)["terminationGracePeriodSeconds"] == termination
    assert termination > 2 * grace_s(timeout) + 1, "a run that swallows SIGTERM is abandoned first"


def test_model_keys_come_from_the_keys_secret(documents):
    """An agent that calls a model gets its provider's key variable from the keys Secret."""
    assert env(documents["weekdays"])["FAKE_OPENAI_KEY"] == {
        "secretKeyRef": {"name": "agentops-keys", "key": "FAKE_OPENAI_KEY"}
    }
    assert set(env(documents["hourly"])) == {
        "AGENTOPS_STORE_URL",
        "PGPASSWORD",
        "TZ",
        "AGENTOPS_SKIP_EXIT_CODE",
        "AGENTOPS_LOG_STDOUT",
    }


# -- refusals ----------------------------------------------------------------------------


# -- schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        *("*/5 * * * *", "0 0 */2 * *", "0 0 1 * 1", "0 0 * * sun", "0 0 */1 * 1"),
        *("0 0 * * */2", "0 9 1-15 * mon-fri", "@hourly", "@midnight", "@annually", "0 0 30 2 *"),
    ],
)
def test_schedules_kubernetes_reads_as_cron_does_pass_unchanged(expr):
    """Macros but @reboot, and five fields meaning the same to robfig/cron, are kept as written."""
    assert kubernetes_schedule(expr, agent="x") == expr


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("@reboot", "'@reboot' has no Kubernetes equivalent"),
        ("0 0 * * 7", "7 for Sunday"),
        ("0 0 * * 5-7", "7 for Sunday"),
        ("0 0 * * 1,07", "7 for Sunday"),
        ("0 0 */2 * 1", "cron, which runs it on days matching both"),
        ("0 0 1 * */2", "cron, which runs it on days matching both"),
        ("0 0 1,* * 1", "cron, which runs it on days matching either"),
    ],
)
def test_schedules_kubernetes_reads_otherwise_are_refused(expr, words):
    """7 as Sunday, and day fields robfig/cron combines otherwise, are refused with the agent."""
    with pytest.raises(ConfigError, match=re.escape(words)) as caught:
        kubernetes_schedule(expr, agent="digest")
    assert caught.value.agent == "digest"
    assert caught.value.message.startswith("digest: ")


# -- names -------------------------------------------------------------------------------

agent_names = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,99}", fullmatch=True)


@given(agent_names)
def test_every_agent_name_maps_to_a_cronjob_name(agent):
    """Any agent name gives a DNS label of at most 52 characters, the same every time."""
    name = cronjob_name(agent)
    assert DNS_LABEL.fullmatch(name), name
    assert len(name) <= NAME_MAX
    assert cronjob_name(agent) == name


@given(agent_names)
def test_a_name_is_changed_only_where_kubernetes_needs_it(agent):
    """Valid names stay; `_` becomes `-`; only a name too long or ending badly gets a hash."""
    plain = agent.replace("_", "-")
    if len(plain) <= NAME_MAX and DNS_LABEL.fullmatch(plain):
        assert cronjob_name(agent) == plain
    else:
        assert re.fullmatch(r".*-[0-9a-f]{8}", cronjob_name(agent))


@pytest.mark.parametrize("agent", ["a_", "x__", "b-"])
def test_a_name_ending_badly_ends_with_a_hash_of_the_agents_name(agent):
    """`a_` cannot end a CronJob name with `-`, nor become `a`, another agent's name."""
    digest = hashlib.sha256(agent.encode()).hexdigest()[:8]
    assert cronjob_name(agent) == f"{agent[0]}-{digest}"


# -- the zone ------------------------------------------------------------------------------


def test_local_zone_is_tz_first(tmp_path):
    """$TZ names the zone (a leading ':' as cron reads it); an unknown one is refused."""
    missing = tmp_path / "localtime"
    assert local_zone_name({"TZ": "Europe/Paris"}, localtime=missing) == "Europe/Paris"
    assert local_zone_name({"TZ": ":Asia/Tokyo"}, localtime=missing) == "Asia/Tokyo"
    with pytest.raises(ConfigError, match="--time-zone"):
        local_zone_name({"TZ": "Nowhere/Else"}, localtime=missing)


def test_local_zone_without_localtime_is_utc(tmp_path):
    """No /etc/localtime: the C library, and so cron, use UTC."""
    assert local_zone_name({}, localtime=tmp_path / "localtime") == "Etc/UTC"


@pytest.mark.parametrize("tree", ["usr/share/zoneinfo", "usr/share/zoneinfo/posix"])
def test_local_zone_is_where_localtime_links(tmp_path, tree):
    """/etc/localtime linking into a zoneinfo tree names the zone (posix/X is X)."""
    target = tmp_path / tree / "America" / "Denver"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"TZif")
    link = tmp_path / "localtime"
    link.symlink_to(target)
    assert local_zone_name({}, localtime=link, timezone_file=tmp_path / "no") == "America/Denver"


def test_local_zone_from_a_copied_file_needs_etc_timezone(tmp_path):
    """A copied /etc/localtime has no name but Debian's /etc/timezone; without it, refused."""
    copied = tmp_path / "localtime"
    copied.write_bytes(b"TZif")
    named = tmp_path / "timezone"
    named.write_text("Africa/Nairobi\n")
    assert local_zone_name({}, localtime=copied, timezone_file=named) == "Africa/Nairobi"
    with pytest.raises(ConfigError, match="cannot tell the name of this machine's time zone"):
        local_zone_name({}, localtime=copied, timezone_file=tmp_path / "none")


def test_a_leap_second_zone_is_not_taken_for_its_namesake(tmp_path):
    """right/X counts leap seconds, unlike X: it is not named X."""
    target = tmp_path / "zoneinfo" / "right" / "Europe" / "Paris"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"TZif")
    link = tmp_path / "localtime"
    link.symlink_to(target)
    with pytest.raises(ConfigError):
        local_zone_name({}, localtime=link, timezone_file=tmp_path / "none")


# -- in-process --------------------------------------------------------------------------


def target(**changes: str) -> Target:
    fields = {
        "image": IMAGE,
        "time_zone": "UTC",
        "secret": "agentops-store",
        "keys_secret": "agentops-keys",
        "home": "/srv/agentops",
    }
    return Target(**(fields | changes))


def test_a_target_is_checked_as_it_is_made():
    """A Target Kubernetes would refuse cannot be made (UsageError: exit 2)."""
    assert target().image == IMAGE
    for bad in ({"image": " "}, {"namespace": "x" * 64}, {"time_zone": "localtime"}):
        with pytest.raises(UsageError):
            target(**bad)


def test_cronjobs_skip_agents_run_by_hand(agents):
    """cronjobs() takes every agent and returns documents for the scheduled ones only."""
    project = Project.locate(agents.home)
    specs, problems = project.agents()
    assert problems == []
    docs = cronjobs(specs, project.config, target())
    assert len(docs) == len(specs) - 1
    assert all(doc["spec"]["schedule"] for doc in docs)


# -- the Pod Security Standards' "restricted" profile -------------------------------------

RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
"""The volume types the restricted profile allows (every other, hostPath first, is refused)."""

BASELINE_CAPABILITIES = {
    *("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD"),
    *("NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"),
}


def restricted_violations(pod_spec: dict) -> list[str]:
    """What in ``pod_spec`` the Pod Security Standards' restricted profile refuses.

    The controls of the baseline and restricted profiles as
    https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists
    them, field by field (pod-level values hold for a container that leaves
    them unset, as the admission controller reads them).
    """
    context = pod_spec.get("securityContext", {})
    found = [
        f"spec.{field}" for field in ("hostNetwork", "hostPID", "hostIPC") if pod_spec.get(field)
    ]
    if context.get("windowsOptions", {}).get("hostProcess"):
        found.append("spec.securityContext.windowsOptions.hostProcess")
    for volume in pod_spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"volume {volume['name']}: {sorted(kinds - RESTRICTED_VOLUMES)}")
    # No sysctl is needed: any, even a safe one, is worth a look.
    found += [f"sysctl {sysctl['name']}" for sysctl in context.get("sysctls", [])]
    if context.get("runAsUser") == 0:
        found.append("spec.securityContext.runAsUser 0")
    if context.get("seccompProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        found.append("spec.securityContext.seccompProfile")
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for one in pod_spec.get(key, []):
            found += [f"container {one['name']}: {v}" for v in _container_violations(one, context)]
    return found


def _container_violations(one: dict, pod_context: dict) -> list[str]:
    context = one.get("securityContext", {})
    capabilities = context.get("capabilities", {})
    added = set(capabilities.get("add", []))
    non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
    seccomp = context.get("seccompProfile", pod_context.get("seccompProfile", {})).get("type")
    checks = {
        "privileged": bool(context.get("privileged")),
        "hostPort": any(port.get("hostPort") for port in one.get("ports", [])),
        "procMount": context.get("procMount", "Default") != "Default",
        "allowPrivilegeEscalation must be false": context.get("allowPrivilegeEscalation")
        is not False,
        "runAsNonRoot must be true": non_root is not True,
        "runAsUser 0": context.get("runAsUser") == 0,
        "seccompProfile must be RuntimeDefault or Localhost": seccomp
        not in ("RuntimeDefault", "Localhost"),
        "capabilities must drop ALL": "ALL" not in capabilities.get("drop", []),
        "capabilities may add only NET_BIND_SERVICE": bool(added - {"NET_BIND_SERVICE"}),
        "capabilities beyond the baseline's": bool(added - BASELINE_CAPABILITIES),
    }
    return [violation for violation, refused in checks.items() if refused]


def test_every_pod_passes_the_restricted_profile(documents):
    """Every field the restricted profile checks, in every pod the CronJobs make."""
    for doc in documents.values():
        assert restricted_violations(pod(doc)) == [], doc["metadata"]["name"]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda p: p["securityContext"].pop("runAsNonRoot"),
        lambda p: p["securityContext"].update(runAsUser=0),
        lambda p: p["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
        lambda p: p["containers"][0]["securityContext"].pop("capabilities"),
        lambda p: p["securityContext"].pop("seccompProfile"),
        lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        lambda p: p["containers"][0]["securityContext"].update(privileged=True),
        lambda p: p.update(hostNetwork=True),
    ],
    ids=[
        "root allowed",
        "uid 0",
        "escalation",
        "capabilities kept",
        "no seccomp",
        "hostPath",
        "privileged",
        "host network",
    ],
)
def test_the_profile_check_catches_what_the_profile_refuses(documents, spoil):
    """The check above is not vacuous: each spoiled field of an exported pod is found."""
    spoiled = copy.deepcopy(pod(documents["hourly"]))  # the documents are the module's
    spoil(spoiled)
    assert restricted_violations(spoiled) != []


def test_the_root_file_system_is_read_only_and_what_agentops_writes_is_an_empty_dir(documents):
    """state/ and logs/ under the home, and /tmp: emptyDir volumes; everything else read-only."""
    for doc in documents.values():
        spec = pod(doc)
        assert container(doc)["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["name"]: m["mountPath"] for m in container(doc)["volumeMounts"]}
        assert mounts == {
            "state": "/srv/agentops/state",
            "logs": "/srv/agentops/logs",
            "tmp": "/tmp",  # noqa: S108 - the pod's own volume
        }
        assert {v["name"]: v for v in spec["volumes"]} == {
            name: {"name": name, "emptyDir": {}} for name in mounts
        }
        assert spec["securityContext"]["runAsUser"] == 10001
        assert spec["securityContext"]["fsGroup"] == 10001, "the emptyDirs are the user's"


def test_skips_end_the_job_successfully_and_the_log_goes_to_stdout(documents):
    """AGENTOPS_SKIP_EXIT_CODE 0 and AGENTOPS_LOG_STDOUT 1 by default; resources set."""
    for doc in documents.values():
        assert env(doc)["AGENTOPS_SKIP_EXIT_CODE"] == "0"
        assert env(doc)["AGENTOPS_LOG_STDOUT"] == "1"
        assert container(doc)["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        }
