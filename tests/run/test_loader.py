"""Agents are real files in tmp_path, imported as ``agentops run`` would import them."""

import os
import sys
import textwrap

import pytest

from agentops.errors import ConfigError
from agentops.project.home import Project
from agentops.run.loader import AgentCode, load_agent

MODELS = """\
from pydantic import BaseModel

from agentops import Context


class Params(BaseModel):
    name: str = "world"


class Result(BaseModel):
    greeting: str
"""

GOOD = (
    MODELS
    + """

def run(params: Params, ctx: Context) -> Result:
    return Result(greeting=f"Hello, {params.name}!")


def validate(result: Result, ctx: Context) -> None:
    if not result.greeting:
        raise ValueError("empty greeting")


def rollback(result: Result, ctx: Context) -> None:
    pass
"""
)


@pytest.fixture(autouse=True)
def _forget_imported_agents(monkeypatch, tmp_path):
    """Each test starts from the interpreter's own sys.path and modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def load(project):
    """Write an agent into the project and load it through the real Project."""

    def write_and_load(code: str, name: str = "hello") -> AgentCode:
        project.add_agent(name, code=code)
        return load_agent(Project.locate(project.home).agent(name))

    return write_and_load


@pytest.fixture
def load_error(project, load):
    """Load an agent that must be refused; return the one-line message, checked for 78."""

    def refused(code: str, name: str = "hello") -> str:
        with pytest.raises(ConfigError) as caught:
            load(code, name)
        error = caught.value
        assert error.exit_code == 78
        assert error.agent == name
        assert "\n" not in error.message
        assert error.message.startswith(str(project.home / "agents" / name / "agent.py"))
        return error.message

    return refused


def line_of(code: str, text: str) -> int:
    """The 1-based line of the file written from ``code`` that contains ``text``."""
    lines = textwrap.dedent(code).splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


# agents that load


def test_a_good_agent_gives_its_run_models_and_hooks(load):
    """Params and Result come from run()'s annotations; validate and rollback are found."""
    code = load(GOOD)
    assert code.params_model is code.module.Params
    assert code.result_model is code.module.Result
    assert code.run(code.params_model(name="cron"), None) == code.result_model(
        greeting="Hello, cron!"
    )
    assert code.hook("validate") is code.module.validate
    assert code.hook("rollback") is code.module.rollback


def test_hooks_are_optional(load):
    """An agent with only run() has no validate or rollback hook."""
    code = load(GOOD.split("\n\ndef validate")[0])
    assert code.hook("validate") is None
    assert code.hook("rollback") is None


def test_postponed_annotations_with_context_only_for_type_checking(load):
    """Under `from __future__ import annotations`, Context imported for type checkers only works."""
    code = load(
        """
        from __future__ import annotations

        from typing import TYPE_CHECKING

        from pydantic import BaseModel

        if TYPE_CHECKING:
            from agentops import Context


        class Params(BaseModel):
            limit: int = 3


        class Result(BaseModel):
            count: int


        def run(params: Params, ctx: Context) -> Result:
            return Result(count=params.limit)
        """
    )
    assert code.params_model is code.module.Params
    assert code.result_model is code.module.Result


def test_a_helper_module_beside_agent_py_can_be_imported(project, load):
    """agent.py imports a helper from its own directory, as a script would."""
    (project.home / "agents" / "hello").mkdir(parents=True)
    (project.home / "agents" / "hello" / "greetings.py").write_text('WORD = "Howdy"\n')
    code = load(
        MODELS
        + """
from greetings import WORD

def run(params: Params, ctx: Context) -> Result:
    return Result(greeting=f"{WORD}, {params.name}!")
"""
    )
    assert code.run(code.params_model(), None).greeting == "Howdy, world!"


# agents that are refused


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_an_agent_py_that_is_no_regular_file_is_refused_never_waited_on(project, kind):
    """A FIFO (an import would wait on it for a writer) or a directory: 78, saying what it is."""
    directory = project.add_agent("hello")
    code = directory / "agent.py"
    code.unlink()
    os.mkfifo(code) if kind == "fifo" else code.mkdir()
    with pytest.raises(ConfigError) as caught:
        load_agent(Project.locate(project.home).agent("hello"))
    assert caught.value.exit_code == 78
    what = "a FIFO" if kind == "fifo" else "a directory"
    assert caught.value.message == f"{code}: cannot be read: it is {what}, not a regular file"


def test_a_missing_agent_py_is_refused(project):
    """An agent.toml without agent.py is a configuration error saying agent.py is missing."""
    directory = project.add_agent("hello")
    (directory / "agent.py").unlink()
    with pytest.raises(ConfigError) as caught:
        load_agent(Project.locate(project.home).agent("hello"))
    assert caught.value.exit_code == 78
    assert caught.value.message == (
        f"{directory / 'agent.py'}: missing: every agent needs an agent.py"
    )


@pytest.mark.parametrize("run", ["", "run = 5"])
def test_an_agent_without_run_is_refused(load_error, run):
    """A module with no callable run says it defines no run(params, ctx)."""
    assert "defines no run(params, ctx) function" in load_error(MODELS + run)


@pytest.mark.parametrize(
    "signature",
    [
        "def run(params: Params) -> Result:",
        "def run(params: Params, ctx: Context, extra: int) -> Result:",
        "def run(params, ctx):",
        "def run(params: dict, ctx: Context) -> dict:",
        "def run(params: Params, ctx: Context) -> None:",
        "def run(params: Params, ctx: Context):",
    ],
)
def test_a_run_with_the_wrong_signature_is_refused(load_error, signature):
    """A run() not taking (params, ctx) annotated with pydantic models is refused with a hint."""
    message = load_error(f"{MODELS}\n{signature}\n    raise NotImplementedError\n")
    assert "run() has the wrong signature" in message
    assert "def run(params: Params, ctx: Context) -> Result" in message


def test_a_run_taking_ctx_by_keyword_only_is_refused(load_error):
    """The runner calls run(params, ctx) positionally: a keyword-only ctx would fail every run."""
    signature = "def run(params: Params, *, ctx: Context) -> Result:"
    message = load_error(f"{MODELS}\n{signature}\n    raise NotImplementedError\n")
    assert "run() has the wrong signature" in message


def test_annotations_that_cannot_be_resolved_are_refused(load_error):
    """A postponed annotation naming a model that does not exist is reported as such."""
    message = load_error(
        "from __future__ import annotations\n"
        + MODELS
        + "\ndef run(params: Parms, ctx: Context) -> Result:\n    raise NotImplementedError\n"
    )
    assert "run()'s annotations cannot be resolved" in message
    assert "Parms" in message


def test_a_syntax_error_names_the_file_and_line(project, load_error):
    """A SyntaxError is reported at agent.py:<line>."""
    code = MODELS + "\ndef run(params: Params, ctx: Context) -> Result\n    pass\n"
    message = load_error(code)
    path = project.home / "agents" / "hello" / "agent.py"
    assert message.startswith(f"{path}:{line_of(code, 'def run')}: cannot import: SyntaxError")


def test_an_exception_at_import_names_the_file_and_line(project, load_error):
    """An exception raised while importing is reported at agent.py:<line> with its type."""
    code = MODELS + '\nimport os\n\nKEY = os.environ["AGENTOPS_TEST_NO_SUCH_VARIABLE"]\n'
    message = load_error(code)
    path = project.home / "agents" / "hello" / "agent.py"
    line = line_of(code, "KEY =")
    assert message.startswith(f"{path}:{line}: cannot import: KeyError: ")
    assert "AGENTOPS_TEST_NO_SUCH_VARIABLE" in message


def test_an_exception_in_a_function_called_at_import_names_its_line(project, load_error):
    """The line reported is the deepest one in agent.py, where the error was raised."""
    code = MODELS + '\ndef connect():\n    raise RuntimeError("no database")\n\n\nconnect()\n'
    message = load_error(code)
    path = project.home / "agents" / "hello" / "agent.py"
    line = line_of(code, "raise RuntimeError")
    assert message.startswith(f"{path}:{line}: cannot import: RuntimeError: no database")


def test_a_syntax_error_in_a_helper_is_not_placed_in_agent_py(project, load_error):
    """A SyntaxError in a helper module is not reported at a line of agent.py it is not on."""
    directory = project.home / "agents" / "hello"
    directory.mkdir(parents=True)
    (directory / "helpers.py").write_text("X = 1\nY = 2\nZ = 3\ndef broken(:\n    pass\n")
    message = load_error("import helpers\n")
    # agent.py has one line: the import. Line 4 is in helpers.py.
    assert message.startswith((f"{directory / 'agent.py'}:1:", f"{directory / 'helpers.py'}:4:"))


def test_sys_exit_at_import_is_a_config_error(load_error):
    """An agent calling sys.exit() while imported is refused, not a silent exit of agentops."""
    message = load_error('import sys\n\nsys.exit("set API_KEY first")\n' + GOOD)
    assert "set API_KEY first" in message


@pytest.mark.parametrize("hook", ["validate", "rollback"])
def test_a_hook_that_is_not_callable_is_refused(load_error, hook):
    """`validate = True` is a mistake that must not pass as 'no hook'."""
    message = load_error(GOOD.split("\n\ndef validate")[0] + f"\n{hook} = True\n")
    assert f"{hook} must be a plain function" in message


@pytest.mark.parametrize(
    ("hook", "wrong", "right"),
    [
        ("validate", "def validate(result):", "def validate(result, ctx)"),
        ("rollback", "def rollback():", "def rollback(output, ctx)"),
        ("fallback", "def fallback(params, ctx):", "def fallback(params, ctx, error)"),
        ("apply", "def apply(result, ctx, extra):", "def apply(result, ctx)"),
        ("reconcile", "def reconcile(action, key):", "def reconcile(action, key, ctx)"),
        ("validate", "def validate(result, *, ctx):", "def validate(result, ctx)"),
    ],
    ids=["validate", "rollback", "fallback", "apply", "reconcile", "keyword-only"],
)
def test_a_hook_that_cannot_take_its_arguments_is_refused_at_load(load_error, hook, wrong, right):
    """A hook with the wrong signature is a configuration error naming the right one."""
    code = GOOD.split("\n\ndef validate")[0] + f"\n\n{wrong}\n    pass\n"
    message = load_error(code)
    assert f"{hook}() takes the wrong arguments: write {right}" in message


@pytest.mark.parametrize(
    "signature",
    [
        "def validate(result, ctx=None, *args, **kwargs):",
        "def validate(*args):",
        "def validate(result: Result, context: Context) -> None:",
    ],
    ids=["defaults-and-extras", "star-args", "other-names"],
)
def test_a_hook_that_can_take_its_arguments_is_accepted(load, signature):
    """Any signature that binds the arguments positionally is fine, whatever the names."""
    code = load(GOOD.split("\n\ndef validate")[0] + f"\n\n{signature}\n    pass\n")
    assert code.hook("validate") is code.module.validate


@pytest.mark.parametrize("kind", ["async def", "generator"])
def test_a_hook_that_is_not_a_plain_function_is_refused(load_error, kind):
    """An async or generator validate() would never run its checks: refused at load."""
    definition = (
        "async def validate(result, ctx):\n    pass\n"
        if kind == "async def"
        else "def validate(result, ctx):\n    yield\n"
    )
    message = load_error(GOOD.split("\n\ndef validate")[0] + "\n\n" + definition)
    assert "validate must be a plain function, not async def or a generator" in message


@pytest.mark.parametrize(
    "definition",
    [
        "async def run(params: Params, ctx: Context) -> Result: ...",
        "def run(params: Params, ctx: Context) -> Result:\n    yield 1",
    ],
    ids=["async", "generator"],
)
def test_async_or_generator_run_is_a_configuration_error(load_error, definition):
    """run() must be a plain function: refused before anything runs."""
    assert "must be a plain function" in load_error(MODELS + "\n" + definition + "\n")


def test_an_imported_function_named_like_a_hook_is_not_a_hook(project, load):
    """`from somewhere import validate` does not become the agent's validate() hook."""
    (project.home / "helpers").mkdir()
    (project.home / "helpers" / "checks.py").write_text("def validate(a):\n    raise ValueError\n")
    helpers = str(project.home / "helpers")
    imports = f"import sys\nsys.path.insert(0, {helpers!r})\nfrom checks import validate\n"
    code = load(imports + GOOD.split("\n\ndef validate")[0])
    assert code.hook("validate") is None, "not the agent's own, and its signature is not checked"
