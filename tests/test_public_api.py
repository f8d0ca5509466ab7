"""``from agentops import ...``: the whole public API, and nothing else.

After httpx's ``test_all_imports_are_exported``: every name in ``__all__``
imports and is documented, and the package exposes no other public name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import agentops
from agentops import hooks
from agentops.project.scaffold import TEMPLATES
from agentops.run.loader import HOOKS

INIT = Path(agentops.__file__)

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "agents").rglob("*.py"))

AUTHORS_MODULES = {"agentops", "agentops.testing"}
"""What an agent's code and its tests import from agentops: the API and the test kit."""

PUBLIC = sorted(agentops.__all__)

PROTOCOLS = {
    "run": hooks.RunHook,
    "validate": hooks.ValidateHook,
    "rollback": hooks.RollbackHook,
    "fallback": hooks.FallbackHook,
    "apply": hooks.ApplyHook,
    "reconcile": hooks.ReconcileHook,
}


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module's checks: agentops and pydantic are read once."""
    return tmp_path_factory.mktemp("mypy-cache")


def _mypy(directory: Path, cache: Path, source: str) -> subprocess.CompletedProcess[str]:
    """``mypy --strict`` on one agent file, as its author would run it (no project config)."""
    (directory / "agent.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "agent.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _loaded() -> types.ModuleType:
    """agentops with every lazy name loaded, as ``from agentops import *`` leaves it."""
    for name in agentops.__all__:
        getattr(agentops, name)
    return agentops


def test_all_is_sorted():
    """``__all__`` is sorted, so a name added in the wrong place shows in review."""
    assert agentops.__all__ == sorted(agentops.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_imports_from_agentops(name):
    """``from agentops import NAME`` works for every name in ``__all__``, in a fresh interpreter."""
    assert _python(f"from agentops import {name}; print({name} is not None)") == "True"


@pytest.mark.parametrize("name", sorted(set(PUBLIC) - {"__version__"}))
def test_every_public_name_is_documented(name):
    """Each public class (or the ``tool`` decorator) has a docstring of its own, not inherited."""
    value = getattr(agentops, name)
    assert inspect.isclass(value) or inspect.isfunction(value)
    assert (value.__doc__ or "").strip(), f"{name} has no docstring"
    assert not inspect.isclass(value) or "__doc__" in vars(value), f"{name} inherits its docstring"


def test_the_version_is_a_version():
    """``__version__`` is the package's version string (what ``agentops --version`` prints)."""
    assert isinstance(agentops.__version__, str)
    assert all(part.isdigit() for part in agentops.__version__.split("."))


def test_every_public_name_the_package_exposes_is_in_all():
    """Loaded or not, the package's public names are ``__all__``: none missing, none extra.

    A subpackage becomes an attribute of the package once something imports
    it: that is the import system's doing, not an export, so it does not count.
    """
    importlib.import_module("agentops.testing")  # as a test suite would: it adds `testing`
    package = _loaded()
    exposed = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not (isinstance(value, types.ModuleType) and value.__name__ == f"agentops.{name}")
    }
    assert sorted(exposed | {"__version__"}) == PUBLIC


def test_a_star_import_gives_exactly_all():
    """``from agentops import *`` binds the names of ``__all__``, and only them."""
    namespace: dict[str, object] = {}
    exec("from agentops import *", namespace)  # noqa: S102 - a fixed statement
    assert sorted(set(namespace) - {"__builtins__"}) == PUBLIC


def test_dir_shows_the_public_api_before_anything_is_loaded():
    """``dir(agentops)`` lists the public API in a fresh interpreter, lazy names included."""
    public = _python("import agentops; print(' '.join(n for n in dir(agentops) if n[0] != '_'))")
    assert sorted([*public.split(), "__version__"]) == PUBLIC
    assert "__version__" in _python("import agentops; print(dir(agentops))")


def test_importing_agentops_imports_nothing_else():
    """``import agentops`` (cron pays it every tick) loads none of its modules, nor a library."""
    loaded = _python(
        "import sys; before = set(sys.modules); import agentops; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    ).split()
    ours = [name for name in loaded if name.partition(".")[0] == "agentops"]
    assert ours == ["agentops"]
    assert not {"pydantic", "httpx", "click", "structlog"} & set(loaded)


def test_a_lazy_name_is_the_object_of_its_module():
    """``agentops.X`` is the very object its module defines: ``except`` and ``isinstance`` agree."""
    from agentops.context import Context  # noqa: PLC0415 - compared with the lazy one
    from agentops.errors import TransientError  # noqa: PLC0415

    assert agentops.Context is Context
    assert agentops.TransientError is TransientError
    assert issubclass(agentops.LLMUnavailable, agentops.LLMError)


def test_an_unknown_name_raises_attribute_error():
    """A name outside the public API is an AttributeError, as on any module."""
    with pytest.raises(AttributeError, match="has no attribute 'Session'"):
        agentops.Session  # noqa: B018 - the lookup is the test
    with pytest.raises(ImportError):
        exec("from agentops import AgentOpsError", {})  # noqa: S102 - a fixed statement


def test_the_lazy_map_and_the_type_checking_imports_agree():
    """Each name is imported under TYPE_CHECKING from the module ``__getattr__`` loads it from."""
    tree = ast.parse(INIT.read_text())
    checked = {
        alias.asname or alias.name: node.module
        for block in tree.body
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert checked == agentops._HOMES
    assert sorted([*checked, "__version__"]) == PUBLIC


def test_each_hook_protocol_takes_what_the_loader_hands_the_hook():
    """The Protocols' parameters are the loader's, in order, for every hook it looks for."""
    assert set(PROTOCOLS) == {"run", *HOOKS}
    for hook, arguments in HOOKS.items():
        signature = inspect.signature(PROTOCOLS[hook].__call__)
        parameters = list(signature.parameters.values())[1:]  # after self
        assert tuple(p.name for p in parameters) == arguments, hook
        # Positional-only: agentops passes them by position, so any names do.
        assert all(p.kind is inspect.Parameter.POSITIONAL_ONLY for p in parameters), hook


def _agentops_imports(source: str) -> set[str]:
    tree = ast.parse(source)
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    found |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    return {name for name in found if name.partition(".")[0] == "agentops"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_example_agents_import_only_the_public_api(path):
    """The agents under agents/ show authors the way: nothing from agentops' own modules."""
    assert _agentops_imports(path.read_text()) <= AUTHORS_MODULES


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_the_scaffold_templates_import_only_the_public_api(template):
    """What ``agentops init`` writes imports only the API and the test kit."""
    for text in TEMPLATES[template][1:]:
        assert _agentops_imports(text.format(name="example")) <= AUTHORS_MODULES


AUTHOR = """
    from typing import TYPE_CHECKING

    from pydantic import BaseModel

    from agentops import Completion, Context, LLMUnavailable, Note, TransientError

    if TYPE_CHECKING:
        from agentops import (
            ApplyHook,
            FallbackHook,
            ReconcileHook,
            RollbackHook,
            RunHook,
            ValidateHook,
        )


    class Params(BaseModel):
        topic: str = "sales"


    class Result(BaseModel):
        text: str


    def run(params: Params, ctx: Context) -> Result:
        notes: list[Note] = ctx.memory.relevant(params.topic)
        reply: Completion = ctx.llm.complete([{"role": "user", "content": params.topic}])
        if not reply.text:
            raise TransientError("an empty reply", retry_after_s=30)
        return Result(text=f"{reply.text} ({len(notes)} notes)")


    def fallback(params: Params, ctx: Context, error: Exception) -> Result:
        return Result(text="no model" if isinstance(error, LLMUnavailable) else str(error))


    def validate(result: Result, ctx: Context) -> None:
        if not result.text:
            raise ValueError("empty")


    def rollback(output: object, ctx: Context) -> None:
        ctx.log.info("rolled.back", output=repr(output))


    def apply(result: Result, ctx: Context) -> None:
        ctx.state["last"] = result.text


    def reconcile(action: str, key: str, ctx: Context) -> dict[str, str] | bool:
        return {"key": key} if action == "publish" else False


    if TYPE_CHECKING:
        _run: RunHook[Params, Result] = run
        _fallback: FallbackHook[Params, Result] = fallback
        _validate: ValidateHook[Result] = validate
        _rollback: RollbackHook = rollback
        _apply: ApplyHook[Result] = apply
        _reconcile: ReconcileHook = reconcile
"""


def test_an_agent_typed_with_the_public_api_passes_mypy_strict(tmp_path, mypy_cache):
    """An agent importing only from ``agentops`` type-checks under ``mypy --strict`` (py.typed)."""
    done = _mypy(tmp_path, mypy_cache, AUTHOR)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_refuses_a_misspelt_name_and_a_hook_of_the_wrong_shape(tmp_path, mypy_cache):
    """The lazy names do not hide typos from mypy, and the Protocols catch wrong signatures."""
    done = _mypy(
        tmp_path,
        mypy_cache,
        """
        from typing import TYPE_CHECKING

        from pydantic import BaseModel

        from agentops import Context, TransietError

        if TYPE_CHECKING:
            from agentops import RunHook, ValidateHook


        class Params(BaseModel):
            pass


        class Result(BaseModel):
            text: str


        def run(params: Params, ctx: Context) -> str:
            return "not a Result"


        def validate(result: Result, ctx: Context) -> bool:
            return False  # would reject nothing: validate() must raise


        if TYPE_CHECKING:
            _run: RunHook[Params, Result] = run
            _validate: ValidateHook[Result] = validate
        """,
    )
    assert done.returncode == 1
    assert 'Module "agentops" has no attribute "TransietError"' in done.stdout
    assert 'variable has type "RunHook[Params, Result]"' in done.stdout
    assert 'variable has type "ValidateHook[Result]"' in done.stdout
