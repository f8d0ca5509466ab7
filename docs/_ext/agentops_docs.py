# ruff: noqa: INP001 - a Sphinx extension, loaded by path from conf.py
"""Sphinx directives that make reference pages from the program itself.

- ``agentops-cli``: every command's ``--help``, as the command prints it. The
  text comes from :func:`help_text`, the function the tests compare with
  ``agentops COMMAND --help``: the page and the command cannot disagree.
- ``agentops-config ROOT SECTION``: one section of ``agent.toml`` (ROOT
  ``agent``) or ``agentops.toml`` (ROOT ``project``) as a table of its keys,
  their types and defaults, read from the pydantic models. The directive's
  content gives the meaning of each key (``key: meaning``); a key of the
  model without a meaning, a meaning without a key, and a section no
  directive shows are build warnings (errors under ``-W``).

The models are reached from two roots only (:data:`ROOTS`), so this module
follows the configuration wherever its section classes move.
"""

from __future__ import annotations

import math
import types
import typing
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args, get_origin

import annotated_types
import click
from docutils import nodes
from docutils.statemachine import StringList
from pydantic import BaseModel
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic.fields import FieldInfo
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

LOG = logging.getLogger(__name__)

HELP_WIDTH = 80
"""The width the reference renders ``--help`` at (click's default for a terminal)."""


# --- the command line --------------------------------------------------------------------------


def cli_root() -> click.Group:
    """The ``agentops`` command group."""
    from agentops.cli import main  # noqa: PLC0415 - imported when a page asks for it

    return main


def commands(
    group: click.Command | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command, the group first, each with its path of names (``("state", "show")``)."""
    command = group if group is not None else cli_root()
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name="agentops")
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from commands(sub, (*path, name))


def help_text(path: tuple[str, ...]) -> str:
    """What ``agentops PATH... --help`` prints (at :data:`HELP_WIDTH` columns)."""
    root = cli_root()
    # Each context as the command line makes it: with the command's own settings
    # (the group's ``-h``), the children inheriting the parent's.
    ctx = click.Context(
        root, info_name="agentops", terminal_width=HELP_WIDTH, **root.context_settings
    )
    command: click.Command = root
    for name in path:
        assert isinstance(command, click.Group)  # noqa: S101 - paths come from commands()
        sub = command.get_command(ctx, name)
        assert sub is not None  # noqa: S101
        ctx = click.Context(
            sub, info_name=name, parent=ctx, terminal_width=HELP_WIDTH, **sub.context_settings
        )
        command = sub
    return command.get_help(ctx)


def cli_label(path: tuple[str, ...]) -> str:
    """The label of a command's section: ``cli-state-show`` (``{ref}`` links to it)."""
    return "-".join(("cli", *path)) if path else "cli"


class CliDirective(SphinxDirective):
    """``agentops-cli``: a section per command, holding its ``--help``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """One section for each command, in the order of ``agentops --help``."""
        sections: list[nodes.Node] = []
        for path, _command in commands():
            label = cli_label(path)
            title = " ".join(("agentops", *path))
            section = nodes.section(ids=[label], names=[label])
            section += nodes.title(title, "", nodes.literal(title, title))
            text = help_text(path)
            block = nodes.literal_block(text, text, language="text")
            section += block
            self.state.document.note_explicit_target(section)
            sections.append(section)
        return sections


# --- the configuration -------------------------------------------------------------------------

ROOTS = {"agent": "AgentConfig", "project": "ProjectConfig"}
"""The configuration files' models, by the name a page gives them."""

FILES = {"agent": "agent.toml", "project": "agentops.toml"}

UNITS = {
    "parse_duration": "duration",
    "parse_positive_duration": "duration",
    "_store_wait": "duration",  # a positive duration, at most a day
    "parse_rate": "rate",
    "parse_size": "size",
    "check_schedule": "schedule",
}
"""Values people write as text (``"5m"``, ``"4/hour"``, ``"10MB"``), by their validator."""


def root_model(root: str) -> type[BaseModel]:
    """``AgentConfig`` or ``ProjectConfig``."""
    from agentops.project import config  # noqa: PLC0415 - imported when a page asks for it

    model: type[BaseModel] = getattr(config, ROOTS[root])
    return model


def _optional(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None``, and whether it had it."""
    if get_origin(annotation) in {typing.Union, types.UnionType}:
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _model_of(annotation: Any) -> type[BaseModel] | None:
    annotation, _ = _optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def sections(root: str) -> dict[str, type[BaseModel]]:
    """Every section of a file: ``""`` for its top level, ``limits``, ``providers.NAME``..."""
    found: dict[str, type[BaseModel]] = {}

    def walk(prefix: str, model: type[BaseModel]) -> None:
        found[prefix] = model
        for name, field in model.model_fields.items():
            key = f"{prefix}.{field.alias or name}".lstrip(".")
            annotation, optional = _optional(field.annotation)
            if get_origin(annotation) is dict:
                value = get_args(annotation)[1]
                if _model_of(value) is not None:
                    walk(f"{key}.NAME", _model_of(value))  # type: ignore[arg-type]
            elif _model_of(annotation) is not None and not optional:
                walk(key, _model_of(annotation))  # type: ignore[arg-type]

    walk("", root_model(root))
    return found


def keys(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A section's own keys: what is not a section of its own, by the name written in TOML."""
    own = {}
    for name, field in model.model_fields.items():
        annotation, optional = _optional(field.annotation)
        if _model_of(annotation) is not None and not optional:
            continue
        if get_origin(annotation) is dict and _model_of(get_args(annotation)[1]) is not None:
            continue
        own[field.alias or name] = field
    return own


def _unit(field: FieldInfo, annotation: Any) -> str | None:
    metadata = list(field.metadata)
    if get_origin(annotation) is typing.Annotated:
        metadata += list(annotation.__metadata__)
    for item in metadata:
        func = getattr(item, "func", None)
        if func is not None and func.__name__ in UNITS:
            return UNITS[func.__name__]
    return None


def _flat(metadata: list[Any]) -> list[Any]:
    """Constraints, also those of a ``Field()`` nested in an ``Annotated``."""
    from pydantic.fields import FieldInfo  # noqa: PLC0415

    flat: list[Any] = []
    for item in metadata:
        flat.extend(_flat(item.metadata) if isinstance(item, FieldInfo) else [item])
    return flat


def _bounds(metadata: list[Any]) -> str:
    low = high = None
    for item in _flat(metadata):
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Gt):
            low = f"more than {item.gt}"
        elif isinstance(item, annotated_types.Le):
            high = item.le
        elif isinstance(item, annotated_types.Interval):
            low, high = item.ge, item.le
    if low is not None and high is not None:
        return f" {_number(low)} to {_number(high)}"
    if low is not None:
        return f" ≥ {_number(low)}" if not isinstance(low, str) else f" {low}"
    if high is not None:
        return f" ≤ {_number(high)}"
    return ""


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else str(value)


def type_text(field: FieldInfo) -> str:  # noqa: PLR0911 - one answer per kind of value
    """What a key takes, in words: ``integer 1 to 100``, ``duration``, ``list of strings``."""
    annotation, _ = _optional(field.annotation)
    unit = _unit(field, annotation)
    if unit is not None:
        return unit
    metadata = list(field.metadata)
    if get_origin(annotation) is typing.Annotated:
        metadata += list(annotation.__metadata__)
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f'`"{v}"`' for v in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation)
        if get_origin(item) is Literal:
            return "list of " + ", ".join(f'`"{v}"`' for v in get_args(item))
        return "list of URLs" if _is_url(item) else "list of strings"
    if origin is dict:
        value = get_args(annotation)[1]
        if value is typing.Any:
            return "table of values"
        fake = _fake_field(value)
        return f"table of {type_text(fake)}s"
    if _model_of(annotation) is not None:
        return "section"
    if _is_url(field.annotation) or _url_pattern(field.metadata):
        return "URL"
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(annotation, str(annotation)) + _bounds(metadata)


def _is_url(annotation: Any) -> bool:
    """A string whose pattern asks for a scheme (``^https?://``, ``^postgres(ql)?://``)."""
    annotation, _ = _optional(annotation)
    return get_origin(annotation) is typing.Annotated and _url_pattern(annotation.__metadata__)


def _url_pattern(metadata: typing.Iterable[Any]) -> bool:
    patterns = [getattr(item, "pattern", None) for item in _flat(list(metadata))]
    return any(pattern and "://" in pattern for pattern in patterns)


def _fake_field(annotation: Any) -> FieldInfo:
    from pydantic.fields import FieldInfo  # noqa: PLC0415

    return FieldInfo.from_annotation(annotation)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _size(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def default_text(field: FieldInfo) -> str:  # noqa: C901, PLR0911 - one answer per kind of value
    """A key's default as it would be written in TOML, or ``none``."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    annotation, _ = _optional(field.annotation)
    unit = _unit(field, annotation)
    if unit == "duration":
        return f'`"{_duration(value)}"`'
    if unit == "size":
        return f'`"{_size(value)}"`'
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value else '`""`'
    if isinstance(value, float) and math.isfinite(value):
        return f"`{value!r}`"
    if isinstance(value, int):
        return f"`{value}`"
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`" if value else "`[]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def rendered(env: BuildEnvironment) -> dict[str, set[tuple[str, str]]]:
    """The sections each page shows (kept in the build environment, by page)."""
    if not hasattr(env, "agentops_config_sections"):
        env.agentops_config_sections = {}  # type: ignore[attr-defined]
    return env.agentops_config_sections  # type: ignore[attr-defined, no-any-return]


class ConfigDirective(SphinxDirective):
    """``agentops-config ROOT [SECTION]``: a table of one section's keys."""

    required_arguments = 1
    optional_arguments = 1
    has_content = True
    option_spec: ClassVar[dict[str, Any]] = {}

    def run(self) -> list[nodes.Node]:
        """The table, with the meanings the page gives; mismatches are warnings."""
        root = self.arguments[0]
        section = self.arguments[1] if len(self.arguments) > 1 else ""
        where = f"{FILES.get(root, root)} [{section}]" if section else FILES.get(root, root)
        if root not in ROOTS or section not in sections(root):
            LOG.warning("agentops-config: no section %s", where, location=self.get_location())
            return []
        rendered(self.env).setdefault(self.env.docname, set()).add((root, section))
        meanings = self._meanings()
        fields = keys(sections(root)[section])
        for key in sorted(set(fields) - set(meanings)):
            LOG.warning("%s: key %r has no meaning here", where, key, location=self.get_location())
        for key in sorted(set(meanings) - set(fields)):
            LOG.warning("%s: no key %r in the model", where, key, location=self.get_location())
        rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        rows += [
            f"| `{key}` | {type_text(field)} | {default_text(field)} | {meanings.get(key, '')} |"
            for key, field in fields.items()
        ]
        container = nodes.container(classes=["agentops-config"])
        self.state.nested_parse(StringList(rows, source=self.get_source_info()[0]), 0, container)
        return [container]

    def _meanings(self) -> dict[str, str]:
        meanings: dict[str, str] = {}
        for line in self.content:
            if not line.strip():
                continue
            if line.startswith((" ", "\t")) and meanings:
                last = next(reversed(meanings))
                meanings[last] += " " + line.strip()
                continue
            key, _, meaning = line.partition(":")
            meanings[key.strip()] = meaning.strip().replace("|", "\\|")
        return meanings


def check_every_section_is_shown(app: Sphinx, env: BuildEnvironment) -> None:
    """A section of the models that no page shows is a warning: a new key gets documented."""
    del app
    shown = set().union(*rendered(env).values())
    for root in ROOTS:
        for section, model in sections(root).items():
            if keys(model) and (root, section) not in shown:
                LOG.warning("no page shows %s [%s]", FILES[root], section or "top level")


def merge_rendered(
    app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment
) -> None:
    """Parallel reads: gather what each process's pages showed."""
    del app
    theirs = rendered(other)
    rendered(env).update({name: theirs[name] for name in docnames if name in theirs})


def purge_rendered(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    """A page read again shows its sections anew."""
    del app
    rendered(env).pop(docname, None)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives."""
    app.add_directive("agentops-cli", CliDirective)
    app.add_directive("agentops-config", ConfigDirective)
    app.connect("env-check-consistency", check_every_section_is_shown)
    app.connect("env-merge-info", merge_rendered)
    app.connect("env-purge-doc", purge_rendered)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
