"""The kill soak's own checks (bench/soak.py), in process: its short run is in tests/processes/."""

from __future__ import annotations

import importlib.util
import random
import sys

from suite import REPO

SOAK = REPO / "bench" / "soak.py"


def load_soak():
    if "soak" not in sys.modules:  # a dataclass needs its module registered
        spec = importlib.util.spec_from_file_location("soak", SOAK)
        sys.modules["soak"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["soak"])
    return sys.modules["soak"]


def test_the_outbox_check_finds_a_double_publish_a_double_retract_and_a_torn_line(tmp_path):
    """The soak's replay of the outbox reports each way exactly-once can be broken."""
    soak = load_soak()
    trial = soak.Soak(home=tmp_path, rng=random.Random(1), items=2)
    outbox = tmp_path / "outbox.log"
    outbox.write_text("publish a r1\npublish b r1\nretract a r2\npublish a r3\n")
    assert trial.replay() == ({"a", "b"}, [])
    outbox.write_text("publish a r1\npublish a r2\nretract b r2\npublish b r3")
    out, problems = trial.replay()
    assert out == {"a", "b"}
    assert problems == [
        "the outbox ends with a torn line",
        "outbox line 2: a published twice",
        "outbox line 3: b retracted while not out",
    ]


def test_the_soak_agent_reconciles_by_the_outbox(tmp_path):
    """The soak's agent says an item is out exactly when the outbox replay does."""
    soak = load_soak()
    namespace: dict = {}
    exec(compile(soak.AGENT, "agent.py", "exec"), namespace)  # noqa: S102 - our own agent
    (tmp_path / "outbox.log").write_text("publish a r1\npublish b r1\nretract a r2\n")
    assert namespace["out"](tmp_path) == {"b"}
    assert soak.Soak(home=tmp_path, rng=random.Random(1), items=2).replay()[0] == {"b"}
