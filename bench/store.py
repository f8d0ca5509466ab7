"""The cost of a shared store: a run on PostgreSQL against the same run on the file store.

A run on the PostgreSQL store imports psycopg, connects twice (the store's
connection, and the lease's own: each given its bounds in one statement),
checks the tables' version (one statement: ``agentops store init`` made
them, as the bench's server does), takes its lease in a transaction, and
writes each journal record as an insert checked against the lease: a guarded
action's intent waits for the server's disk, as the file store's fsync waits
for the local one. This measures, in one run, real `agentops run` processes
(as cron starts them) of an agent doing N guarded actions, on a PostgreSQL
server of the bench's own on this machine (tests/pgserver.py: the database on
the same disk as the files) and on the file store, alternating the two, and
prints the median ratio and the milliseconds PostgreSQL adds to a run, and
how much of those importing psycopg takes, which every process pays once
(``agentops tick``'s warm parent pays it once for all its agents): alone,
and beside the modules a run has imported already (what a run pays). It
refuses a server that would not wait for its disk (``fsync`` or
``synchronous_commit`` off) or whose data is on another disk than the
files', and prints the machine's load averages before and after: the
server's round trips suffer more from a busy machine than the files' writes.

    python bench/store.py [--actions 100] [--rounds 15] [--target 1.3] [--quick]

Exits 1 if the median ratio passes the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _bench import (
    ENV,
    TOUCH_AGENT,
    Row,
    agentops_executable,
    alternate,
    forget_runs,
    ratio_row,
    report,
    time_row,
    wall_s,
    write_agent,
)
from agentops.store import STORE_URL_ENV
from agentops.store.postgres import PostgresStore

TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(TESTS) not in sys.path:  # the suite's server: one way to start PostgreSQL, not two
    sys.path.insert(0, str(TESTS))

TARGET = 1.3
"""Issue 18: at most 1.3 times the run on files (1.34x measured before it, on a quiet machine)."""
NAME = "touch"

AGENT = TOUCH_AGENT

RUN_MODULES = "agentops.run.runner, agentops.context, agentops.store.postgres"
"""What a run on the PostgreSQL store has imported by the time it imports psycopg."""


def start_server() -> Any:
    """The bench's own PostgreSQL server (installed with apt-get where missing, as root)."""
    from pgserver import PostgresServer  # noqa: PLC0415 - found through TESTS, on sys.path

    try:
        return PostgresServer(durable=True)
    except BaseException as exc:  # pytest's skip, raised when it cannot be installed
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.exit(f"no PostgreSQL server for the benchmark: {exc}")


def wall_and_cpu_s(command: list[str], *, env: dict[str, str]) -> tuple[float, float]:
    """Seconds ``command`` took, and the CPU seconds its process (and what it waited for) used.

    The CPU time is the run's own work (the server's is not counted): other
    processes on the machine stretch the wall time, much less this.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip()
            sys.exit(f"{' '.join(command)} exited {code}: {said}")
    return elapsed, usage.ru_utime + usage.ru_stime


def check_fair(store: PostgresStore, data: Path, home: Path) -> None:
    """Exit unless the server waits for its disk as the file store does, and on the same disk."""
    for setting in ("fsync", "synchronous_commit"):
        found = store.execute(f"SHOW {setting}").fetchone()
        if found is None or found[0] != "on":
            sys.exit(f"the bench's server has {setting} {found}: it would not wait for its disk")
    if data.stat().st_dev != home.stat().st_dev:
        sys.exit(f"the server's data ({data}) and the file store ({home}) are on different disks")


def forget(home: Path, store: PostgresStore) -> None:
    """Remove what a run left (but the lease), so each round starts as the first did."""
    forget_runs(home / "state", NAME)
    for table in ("agent_state", "journal", "agent_record", "tick"):
        store.execute(f"DELETE FROM {{s}}.{table} WHERE agent = %s", (NAME,))  # noqa: S608 - ours


def rows(
    *,
    quick: bool = False,
    actions: int | None = None,
    rounds: int | None = None,
    target: float = TARGET,
) -> list[Row]:
    """``agentops run`` of N guarded actions, on PostgreSQL against on the file store."""
    actions = actions or (20 if quick else 100)
    rounds = rounds or (1 if quick else 15)
    agentops = agentops_executable()
    server = start_server()
    try:
        url = server.database()
        store = PostgresStore(url)
        # Beside the server's files, so both stores write to the same disk.
        with tempfile.TemporaryDirectory(prefix="agentops-bench-") as tmp:
            home = Path(tmp)
            check_fair(store, server.data, home)
            write_agent(home, NAME, AGENT, 'timeout = "1h"\n')
            command = [agentops, "--home", str(home), "run", NAME, "-p", f"actions={actions}"]
            files_env = {k: v for k, v in ENV.items() if k != STORE_URL_ENV}
            postgres_env = {**files_env, STORE_URL_ENV: url}

            cpu_s: dict[str, list[float]] = {"files": [], "postgresql": []}

            def measure(env: dict[str, str]) -> float:
                elapsed, cpu = wall_and_cpu_s(command, env=env)
                cpu_s["postgresql" if STORE_URL_ENV in env else "files"].append(cpu)
                forget(home, store)
                return elapsed

            for env in (files_env, postgres_env):  # imports, .pyc files, the tables
                measure(env)
            for warming in cpu_s.values():
                warming.clear()
            subject_s, baseline_s = alternate(
                rounds, lambda: measure(files_env), lambda: measure(postgres_env)
            )
        store.close()
    finally:
        server.stop()
    # What every process pays before its first statement: psycopg's own import,
    # alone, and beside what a run has imported when it connects (the modules
    # both share, logging's or typing_extensions', a run has loaded anyway).
    bare, driver = [sys.executable, "-c", "pass"], [sys.executable, "-c", "import psycopg"]
    import_s, python_s = alternate(rounds, lambda: wall_s(bare), lambda: wall_s(driver))
    run_modules = [sys.executable, "-c", f"import {RUN_MODULES}"]
    beside = [sys.executable, "-c", f"import {RUN_MODULES}, psycopg"]
    beside_s, run_modules_s = alternate(rounds, lambda: wall_s(run_modules), lambda: wall_s(beside))
    added_s = [s - b for s, b in zip(subject_s, baseline_s, strict=True)]
    # The target, said in time: at most (target - 1) file-store runs more.
    allowance_s = (target - 1) * statistics.median(baseline_s)
    figure = f"agentops run, {actions} guarded actions"
    return [
        ratio_row(
            "store",
            f"{figure}: PostgreSQL store",
            subject_s,
            f"{figure}: file store",
            baseline_s,
            target=target,
        ),
        ratio_row(
            "store",
            "its process's CPU time (user+sys), PostgreSQL store",
            cpu_s["postgresql"],
            "the same, file store",
            cpu_s["files"],
            target=target,
        ),
        time_row(
            "store",
            "time PostgreSQL adds to that run",
            added_s,
            "the run on the file store",
            baseline_s,
            target_s=allowance_s,
        ),
        time_row(
            "store",
            "of which importing psycopg (a process's first use of it)",
            [i - p for i, p in zip(import_s, python_s, strict=True)],
            "the run on the file store",
            baseline_s,
            target_s=allowance_s,  # a process that imports it pays it all
        ),
        time_row(
            "store",
            "of which importing psycopg beside what a run imports",
            [i - p for i, p in zip(beside_s, run_modules_s, strict=True)],
            "the run on the file store",
            baseline_s,
            target_s=allowance_s,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, help="guarded actions in the run (default 100)")
    parser.add_argument("--rounds", type=int, help="measurements of each (default 15)")
    parser.add_argument("--target", type=float, default=TARGET, help="highest acceptable ratio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few actions, one round")
    args = parser.parse_args()
    before = load_average()
    measured = rows(quick=args.quick, actions=args.actions, rounds=args.rounds, target=args.target)
    code = report(measured)
    # Other processes on the machine slow the server's round trips more than the files' writes.
    print(f"\nload average (1, 5, 15 min): {before} before, {load_average()} after")
    return code


def load_average() -> str:
    """The machine's load averages, as /proc/loadavg says them (unknown elsewhere)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
