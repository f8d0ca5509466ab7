"""A dry run keeps the money it really spent, and nothing else."""

from __future__ import annotations

from suite import agent_source

SPENDS_AND_ACTS = agent_source(
    """
    ctx.spend(usd=0.25, tokens=10)
    ctx.state["runs"] = ctx.state.get("runs", 0) + 1
    ctx.action("publish", key=ctx.run_id, do=lambda: (ctx.home / "published").touch())
    return Result()
    """
)


def test_a_dry_run_keeps_its_spends_and_nothing_else(project, clock):
    """The spend is in the stored budget; ctx.state, the ledger and the world are untouched."""
    project.add_agent("agent", SPENDS_AND_ACTS, "[limits]\ncost_usd_per_day = 1.0\n")
    assert project.run(clock=clock).exit_code == 0
    (project.home / "published").unlink()
    before = project.state("agent")
    ledger = project.ledger("agent")
    clock.advance(minutes=1)
    dry = project.run(clock=clock, dry_run=True)
    assert dry.exit_code == 0
    after = project.state("agent")
    assert [s["usd"] for s in after["budget"]["spends"]] == [0.25, 0.25]
    assert after["budget"]["spends"][-1]["run_id"] == dry.run_id
    assert after["data"] == before["data"] == {"runs": 1}
    assert after["last_run"] == before["last_run"], "a dry run is not recorded as a run"
    assert project.ledger("agent") == ledger
    assert not (project.home / "published").exists()


def test_the_spends_of_dry_runs_count_against_the_caps(project, clock):
    """Money a dry run spent is spent: four dry runs of 0.25 fill a 1.0 daily cap."""
    project.add_agent("agent", SPENDS_AND_ACTS, "[limits]\ncost_usd_per_day = 1.0\n")
    for _ in range(4):
        assert project.run(clock=clock, dry_run=True).exit_code == 0
        clock.advance(minutes=1)
    refused = project.run(clock=clock)
    assert refused.exit_code == 75
    assert refused.reason == "budget"


def test_a_dry_run_leaves_the_last_real_runs_backup(project, clock):
    """state/<name>.json.bak is the state before the last real run, whatever dry runs did."""
    project.add_agent("agent", SPENDS_AND_ACTS)
    project.run(clock=clock)
    project.run(clock=clock)
    backup = project.state_path("agent").with_name("agent.json.bak")
    kept = backup.read_bytes()
    project.run(clock=clock, dry_run=True)
    assert backup.read_bytes() == kept
