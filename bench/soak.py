"""A kill soak: kill -9 a publishing run at random moments, many times; each item published once.

Each round starts a real `agentops run` of a publishing agent: it publishes
every item of its feed by appending a line to an outbox through
`ctx.action("publish", key=item, do=..., undo=...)`, and its `reconcile()`
reads the outbox. In some rounds its `validate()` rejects the output, so
`undo()` retracts what the run published (another outbox line). The round is
killed with SIGKILL at a random moment, or aimed inside a `do()` or an
`undo()` (the soak watches the run's journal for its intent or undo record),
or left to finish. When a run publishes its whole feed, the feed moves on to
a new batch of items.

After every round: the state and the ledger load (the library's own readers,
which fold a dead run's journal), `agentops ledger AGENT --json` works, the
outbox never published an item that was already out nor retracted one that
was not, and the ledger agrees with it (committed: out; undone or failed:
not out). After the last kill the run is left to finish, and every item of
every batch must be out exactly once.

    python bench/soak.py [--kills 500] [--items 20] [--seed 1] [--home DIR]

Prints one summary line; exits 1 on any violation, naming each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from agentops.model.ledger import COMMITTED, FAILED, UNDONE, Entry
from agentops.ops import admin
from agentops.project.home import Project

AGENTOPS = Path(sys.executable).parent / "agentops"
NAME = "publisher"

AGENT = '''
"""Publishes each feed item by appending it to outbox.log; undo() retracts it."""

import json
import os
import time

from pydantic import BaseModel, Field

from agentops import Context


class Params(BaseModel):
    pause: float = Field(0.002, ge=0)
    undo_pause: float = Field(0.005, ge=0)


class Result(BaseModel):
    published: int


def run(params: Params, ctx: Context) -> Result:
    published = 0
    for item in json.loads((ctx.home / "feed.json").read_text()):

        def publish(item=item):
            time.sleep(params.pause)  # before the effect: a kill here never published
            _append(ctx, f"publish {item} {ctx.run_id}")
            time.sleep(params.pause)  # after it: a kill here published, unrecorded
            return {"item": item, "run_id": ctx.run_id}

        def retract(receipt):
            time.sleep(params.undo_pause)
            _append(ctx, f"retract {receipt['item']} {ctx.run_id}")
            time.sleep(params.undo_pause)

        receipt = ctx.action("publish", key=item, do=publish, undo=retract)
        published += receipt is not None and receipt["run_id"] == ctx.run_id
    return Result(published=published)


def validate(result: Result, ctx: Context) -> None:
    if (ctx.home / "reject").exists():
        raise ValueError("rejected on purpose, so that undo() runs")


def reconcile(name: str, key: str, ctx: Context):
    # A crash inside publish() or retract(): whether the item is out decides.
    return {"item": key, "run_id": "reconciled"} if key in out(ctx.home) else False


def out(home) -> set:
    items = set()
    path = home / "outbox.log"
    for line in path.read_text().splitlines() if path.exists() else []:
        op, item, _ = line.split(" ")
        (items.add if op == "publish" else items.discard)(item)
    return items


def _append(ctx, line):
    fd = os.open(ctx.home / "outbox.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\\n").encode())  # one write: whole or not at all
    finally:
        os.close(fd)
'''

TOML = """\
[circuit]
failures = 1000000   # rejections on purpose must not open the breaker
"""

AIMS = ("random", "random", "random", "do", "undo")
"""How a round picks its kill moment: mostly at random, else inside a do() or an undo()."""

REJECT = 0.3
"""The share of rounds killed at random in which validate() rejects the output."""


@dataclass
class Soak:
    """The soak's project, its random source, and what it has counted and found."""

    home: Path
    rng: random.Random
    items: int
    batch: list[str] = field(default_factory=list)
    batches: int = 0
    every_item: list[str] = field(default_factory=list)
    estimate_s: dict[bool, float] = field(default_factory=dict)
    stale: str | None = None
    """The run id of a dead run's journal, still there when a round starts."""
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def command(self) -> list[str]:
        """The command line of a run of the agent."""
        return [str(AGENTOPS), "--home", str(self.home), "run", NAME]

    def new_batch(self) -> None:
        """Put a batch of new items in the feed."""
        self.batch = [f"b{self.batches:04d}-{i:03d}" for i in range(self.items)]
        self.batches += 1
        self.every_item += self.batch
        (self.home / "feed.json").write_text(json.dumps(self.batch))

    def round(self, *, last: bool = False) -> None:
        """Start a run, kill it (unless ``last``) at a moment picked at random, check."""
        self.counts["rounds"] += 1
        aim = "finish" if last else self.rng.choice(AIMS)
        reject = aim == "undo" or (aim == "random" and self.rng.random() < REJECT)
        marker = self.home / "reject"
        marker.touch() if reject else marker.unlink(missing_ok=True)
        self.stale = self._journal()[0]
        started = time.monotonic()
        proc = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        killed = aim != "finish" and self._kill(proc, aim, reject=reject)
        stdout, stderr = proc.communicate(timeout=300)
        if killed:
            self.counts["kills"] += 1
            self.counts[f"killed {self._phase()}"] += 1
        else:
            duration = time.monotonic() - started
            self._finished(proc.returncode, stdout + stderr, reject=reject, duration=duration)
        self.check(killed=killed)

    def _kill(self, proc: subprocess.Popen[bytes], aim: str, *, reject: bool) -> bool:
        if aim == "random":
            moment = self.rng.uniform(0, 1.2 * self.estimate_s[reject])
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=moment)
        else:
            # The run publishes (and, rejected, retracts) the batch's items not out yet:
            # kill it inside the nth do() or undo() of those.
            op = "intent" if aim == "do" else "undo"
            nth = self.rng.randint(1, max(1, len(set(self.batch) - self.replay()[0])))
            while proc.poll() is None and self._records(op) < nth:
                time.sleep(0.0005)
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        return True

    def _journal(self) -> tuple[str | None, list[str]]:
        """The run id and the record kinds of the journal there is, if any."""
        try:
            lines = (self.home / "state" / f"{NAME}.journal").read_bytes().splitlines()
        except FileNotFoundError:
            return None, []
        records = []
        for line in lines:
            with contextlib.suppress(ValueError):  # the last line may be torn
                records.append(json.loads(line))
        return (records[0]["run_id"] if records else None), [r["op"] for r in records]

    def _records(self, op: str) -> int:
        run_id, ops = self._journal()
        return 0 if run_id == self.stale else ops.count(op)

    def _phase(self) -> str:
        # Where the kill landed, by the last record of the run's journal.
        run_id, ops = self._journal()
        if run_id is None:
            return "with no journal (start-up, or the end)"
        if run_id == self.stale:
            return "before the dead run's journal was folded in"
        last = ops[-1]
        return {"intent": "inside do()", "undo": "inside undo()"}.get(last, f"after {last}")

    def _finished(self, code: int, output: bytes, *, reject: bool, duration: float) -> None:
        expected = 65 if reject else 0
        if code != expected:
            self.violations.append(
                f"round {self.counts['rounds']}: exit {code}, not {expected}: "
                + output.decode(errors="replace").strip()
            )
            return
        self.counts["rejected" if reject else "finished"] += 1
        self.estimate_s[reject] = 0.7 * self.estimate_s.get(reject, duration) + 0.3 * duration
        if not reject:  # the whole batch is out: check it, and move on
            self.check_batch(self.batch)
            self.new_batch()

    def check(self, *, killed: bool) -> None:
        """The state and the ledger load and agree with the outbox; after a kill, the CLI too."""
        where = f"after round {self.counts['rounds']}"
        project = Project.locate(self.home)
        try:
            admin.current_state(project, NAME)
            ledger = admin.current_ledger(project, NAME)
        except Exception as exc:  # noqa: BLE001 - any error here is the finding
            self.violations.append(f"{where}: the state or ledger does not load: {exc!r}")
            return
        if killed:
            self._check_listing(where)
        out, problems = self.replay()
        self.violations += [f"{where}: {problem}" for problem in problems]
        for item, line in ledger.entries.get("publish", {}).items():
            status = Entry.parse(line).status
            if status == COMMITTED and item not in out:
                self.violations.append(f"{where}: {item} is committed but not in the outbox")
            if status in (UNDONE, FAILED) and item in out:
                self.violations.append(f"{where}: {item} is {status} but in the outbox")

    def _check_listing(self, where: str) -> None:
        # What an operator runs after a crash: it reads the dead run's journal too.
        listing = subprocess.run(
            [str(AGENTOPS), "--home", str(self.home), "ledger", NAME, "--all", "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            json.loads(listing.stdout)
        except ValueError:
            self.violations.append(
                f"{where}: agentops ledger --json: exit {listing.returncode}: {listing.stderr}"
            )

    def replay(self) -> tuple[set[str], list[str]]:
        """The items out now, and the outbox's problems: an item published twice, and so on."""
        out: set[str] = set()
        problems = []
        path = self.home / "outbox.log"
        data = path.read_text() if path.exists() else ""
        if data and not data.endswith("\n"):
            problems.append("the outbox ends with a torn line")
        for number, line in enumerate(data.splitlines(), start=1):
            op, item, _run_id = line.split(" ")
            if op == "publish" and item in out:
                problems.append(f"outbox line {number}: {item} published twice")
            if op == "retract" and item not in out:
                problems.append(f"outbox line {number}: {item} retracted while not out")
            (out.add if op == "publish" else out.discard)(item)
        return out, problems

    def check_batch(self, items: list[str]) -> None:
        """Every one of ``items`` is out, and committed in the ledger."""
        out = self.replay()[0]
        ledger = admin.current_ledger(Project.locate(self.home), NAME).entries.get("publish", {})
        for item in items:
            if item not in out:
                self.violations.append(f"{item} is missing from the outbox")
            status = Entry.parse(ledger[item]).status if item in ledger else "absent"
            if status != COMMITTED:
                self.violations.append(f"{item} is {status} in the ledger, not committed")

    def finish(self) -> None:
        """Let the run finish, then check every item of every batch."""
        (self.home / "reject").unlink(missing_ok=True)
        for _ in range(3):
            done = self.counts["finished"]
            self.round(last=True)
            if self.counts["finished"] > done:
                break
        else:
            self.violations.append("the run did not finish after the last kill")
        self.check_batch(self.every_item[: -len(self.batch)])
        state = json.loads((self.home / "state" / f"{NAME}.json").read_text())
        if state["last_run"]["status"] != "succeeded":
            self.violations.append(f"the last run is {state['last_run']['status']}")
        if (self.home / "state" / f"{NAME}.journal").exists():
            self.violations.append("a journal is left after a run that finished")
        events = [json.loads(line) for line in (self.home / "logs" / f"{NAME}.jsonl").open()]
        self.counts.update(
            e["event"] for e in events if e["event"] in ("run.recovered", "action.reconciled")
        )
        self.counts["retracted"] = (self.home / "outbox.log").read_text().count("retract ")


def soak(home: Path, *, kills: int, items: int, seed: int) -> Soak:
    """Kill runs of the publishing agent in ``home`` until ``kills`` kills landed; then finish."""
    (home / "agents" / NAME).mkdir(parents=True)
    (home / "agents" / NAME / "agent.py").write_text(AGENT)
    (home / "agents" / NAME / "agent.toml").write_text(TOML)
    trial = Soak(home=home, rng=random.Random(seed), items=items)
    trial.new_batch()
    trial.round(last=True)  # one whole run: how long a run takes, to pick kill moments in
    trial.estimate_s.setdefault(True, 2 * trial.estimate_s.get(False, 1.0))
    while trial.counts["kills"] < kills and not trial.violations:
        trial.round()
    trial.finish()
    return trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=500, help="SIGKILLs to land (500)")
    parser.add_argument("--items", type=int, default=20, help="items in each batch (20)")
    parser.add_argument("--seed", type=int, default=1, help="of the kill moments (1)")
    parser.add_argument("--home", type=Path, help="the project directory (default: a new one)")
    args = parser.parse_args()

    started = time.monotonic()
    home = args.home or Path(tempfile.mkdtemp(prefix="agentops-soak-"))
    result = soak(home, kills=args.kills, items=args.items, seed=args.seed)
    counts = result.counts
    published = len(result.every_item) - len(result.batch)
    where = ", ".join(
        f"{n} {k.removeprefix('killed ')}" for k, n in counts.items() if "killed " in k
    )
    print(
        f"soak: {counts['kills']} kills in {counts['rounds']} rounds ({where}); "
        f"{published} items in {result.batches - 1} batches, "
        f"{counts['retracted']} retracted by undo() and published again, "
        f"{counts['rejected']} runs rejected, {counts['run.recovered']} recoveries, "
        f"{counts['action.reconciled']} reconciled; "
        f"{len(result.violations)} violations in {time.monotonic() - started:.0f}s"
    )
    for violation in result.violations:
        print(f"VIOLATION {violation}")
    if result.violations:
        print(f"the project is kept for a look: {home}")
        return 1
    if args.home is None:
        shutil.rmtree(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
