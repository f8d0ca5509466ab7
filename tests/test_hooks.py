"""The hooks an agent defines, as Protocols: a type checker holds an agent to them.

One mypy run (its API, in-process) over two agents: one whose functions fit
every hook, and one whose hooks each take the wrong arguments.
"""

from __future__ import annotations

import re
import textwrap

import mypy.api

from agentops import hooks
from agentops.run import loader

FITS = """
from typing import TYPE_CHECKING
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    n: int = 1

class Result(BaseModel):
    total: int

def run(params: Params, ctx: Context) -> Result:
    return Result(total=params.n)

def validate(result: Result, ctx: Context) -> None:
    pass

def rollback(output: Result, ctx: Context) -> None:
    pass

def fallback(params: Params, ctx: Context, error: BaseException) -> Result:
    return Result(total=0)

def apply(result: Result, ctx: Context) -> None:
    pass

def reconcile(action: str, key: str, ctx: Context) -> bool:
    return True

if TYPE_CHECKING:
    from agentops import (
        ApplyHook, FallbackHook, ReconcileHook, RollbackHook, RunHook, ValidateHook,
    )

    _run: RunHook[Params, Result] = run
    _validate: ValidateHook[Result] = validate
    _rollback: RollbackHook = rollback
    _fallback: FallbackHook[Params, Result] = fallback
    _apply: ApplyHook[Result] = apply
    _reconcile: ReconcileHook = reconcile
"""

WRONG = """
from typing import TYPE_CHECKING
from pydantic import BaseModel
from agentops import Context

class Params(BaseModel):
    n: int = 1

class Result(BaseModel):
    total: int

def run(params: Params) -> Result:
    return Result(total=params.n)

def validate(result: Result) -> None:
    pass

def fallback(params: Params, ctx: Context) -> Result:
    return Result(total=0)

if TYPE_CHECKING:
    from agentops import FallbackHook, RunHook, ValidateHook

    _run: RunHook[Params, Result] = run
    _validate: ValidateHook[Result] = validate
    _fallback: FallbackHook[Params, Result] = fallback
"""


def test_a_type_checker_holds_an_agent_to_the_hooks(tmp_path):
    """Functions that fit pass mypy --strict; each hook with the wrong arguments is an error."""
    (tmp_path / "fits.py").write_text(textwrap.dedent(FITS))
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG))
    out, err, _ = mypy.api.run(
        [
            *("--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "cache")),
            *("--python-version", "3.11", str(tmp_path / "fits.py"), str(tmp_path / "wrong.py")),
        ]
    )
    lines = [line for line in out.splitlines() if ": error:" in line]
    assert [line for line in lines if "fits.py" in line] == [], out + err
    wrong = {int(re.search(r"wrong\.py:(\d+):", line)[1]) for line in lines}
    source = textwrap.dedent(WRONG).splitlines()
    flagged = {source[n - 1].split(":")[0].strip() for n in wrong}
    assert flagged == {"_run", "_validate", "_fallback"}, out


def test_the_hooks_drawn_are_the_functions_the_loader_looks_for():
    """The docstring's list is the loader's: run required, the others optional, by these names."""
    drawn = re.findall(r"^    (\w+)\(", hooks.__doc__ or "", flags=re.MULTILINE)
    assert drawn == ["run", "validate", "rollback", "fallback", "apply", "reconcile"]
    assert {name.removesuffix("Hook").lower() for name in hooks.__all__} == set(drawn)
    source = (loader.__file__ and open(loader.__file__).read()) or ""  # noqa: PTH123, SIM115
    for name in drawn:
        assert f'"{name}"' in source, f"the loader does not look for {name}()"
