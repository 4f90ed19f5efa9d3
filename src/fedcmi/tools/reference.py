"""The configuration and CLI references of the documentation, generated from the code.

Every config key is a dataclass field with an attribute docstring (the string literal on
the line after the field), read here with :mod:`ast`; :func:`undocumented_keys` lists the
fields without one, and the test suite requires it to be empty. The CLI reference walks
the argparse parser of :mod:`fedcmi.cli`. ``docs/gen_reference.py`` (``make reference``)
writes both pages into ``docs/reference/``; a test fails when they are stale.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from collections.abc import Iterator
from typing import Any

from fedcmi.bounds import OneOf, Range
from fedcmi.config import DEFAULT_NAMES, Config, NamedConfig
from fedcmi.registry import ALGORITHMS, DATASETS, ENCODERS


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass's fields, base classes included."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        node = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0]
        assert isinstance(node, ast.ClassDef)
        for stmt, after in zip(node.body, node.body[1:]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def sections() -> Iterator[tuple[str, type]]:
    """Every table of a config and its dataclass: the top level (``""``), the fixed
    sections, then ``data`` for each dataset and ``algorithm`` for each method."""
    yield "", Config
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if hints[f.name] is not NamedConfig and dataclasses.is_dataclass(hints[f.name]):
            yield f.name, hints[f.name]
    for name in DATASETS.names():
        yield f"data:{name}", DATASETS.get(name).Params
    for name in ALGORITHMS.names():
        yield f"algorithm:{name}", ALGORITHMS.get(name).Params


def _keys(cls: type) -> list[dataclasses.Field[Any]]:
    hints = typing.get_type_hints(cls)
    return [
        f
        for f in dataclasses.fields(cls)
        if hints[f.name] is not NamedConfig and not dataclasses.is_dataclass(hints[f.name])
    ]


def undocumented_keys() -> list[str]:
    """Dotted keys without an attribute docstring (the reference would show no text)."""
    missing = []
    for where, cls in sections():
        docs = field_docs(cls)
        missing += [f"{where}.{f.name}".lstrip(".") for f in _keys(cls) if f.name not in docs]
    return missing


def _type_name(hint: Any) -> str:
    """A type for a Markdown table cell: Literal choices and unions as separate code
    spans (a pipe inside a code span would not render)."""
    if typing.get_origin(hint) is typing.Annotated:
        names = [n for b in hint.__metadata__ if isinstance(b, OneOf) for n in b.registry.names()]
        if names:  # a registered name: its current entries, as a Literal shows its choices
            return " \\| ".join(f'`"{n}"`' for n in names)
        ranges = [
            str(b).removeprefix("a value ") for b in hint.__metadata__ if isinstance(b, Range)
        ]
        return " ".join([_type_name(typing.get_args(hint)[0]), *ranges])
    if typing.get_origin(hint) is typing.Literal:
        return " \\| ".join(
            f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in typing.get_args(hint)
        )
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "absent"
    text = getattr(hint, "__name__", None) if not typing.get_args(hint) else None
    return f"`{text or str(hint).replace('typing.', '')}`"


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value is None:
        return "absent"
    return f"`{value!r}`".replace("'", '"') if not isinstance(value, bool) else f"`{value}`".lower()


def _table(cls: type) -> list[str]:
    docs, hints = field_docs(cls), typing.get_type_hints(cls, include_extras=True)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in _keys(cls):
        text = " ".join(docs.get(f.name, "").split()).replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_type_name(hints[f.name])} | {_default(f)} | {text} |")
    return rows if len(rows) > 2 else ["No keys."]


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def config_reference() -> str:
    """The Markdown page of every config key, with type, default and meaning."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the config dataclasses (`make reference`): every key,"
        " its type, its default and its meaning. A preset is a TOML file of these keys;"
        " `--set key=value` overrides one (dotted keys, values parsed as TOML). Unknown keys"
        " and wrong types are refused with the key, the value and what is allowed.",
        "",
        "## Top level",
        "",
        *_table(Config),
    ]
    registries = {"data": DATASETS, "algorithm": ALGORITHMS}
    for where, cls in sections():
        kind, _, name = where.partition(":")
        if not kind:
            continue
        if not name:  # a fixed section
            out += ["", f"## `[{kind}]`", "", inspect.cleandoc(cls.__doc__ or ""), "", *_table(cls)]
            continue
        if f"## `[{kind}]`" not in out:  # the first entry of a registry's table
            picks = "dataset" if kind == "data" else "method"
            out += [
                "",
                f"## `[{kind}]`",
                "",
                f'`name` picks the {picks} (default `"{DEFAULT_NAMES[kind]}"`);'
                " the other keys of the table are that entry's own:",
            ]
        summary = _first_line(inspect.getmodule(registries[kind].get(name)))
        out += ["", f'### `{kind}.name = "{name}"`', "", summary, "", *_table(cls)]
    out += ["", "## Encoders", "", _encoder_table()]
    return "\n".join(out) + "\n"


def _encoder_table() -> str:
    rows = [
        "Names for `model.encoder_a` / `model.encoder_v`; their keyword options go in"
        " `[model.options_a]` / `[model.options_v]`.",
        "",
        "| name | what | options |",
        "|---|---|---|",
    ]
    for name in ENCODERS.names():
        factory = ENCODERS.get(name)
        params = list(inspect.signature(factory).parameters.values())[2:]
        options = ", ".join(
            f"`{p.name}`" + (f" = `{p.default!r}`" if p.default is not p.empty else "")
            for p in params
            if p.kind is not p.VAR_KEYWORD
        )
        if any(p.kind is p.VAR_KEYWORD for p in params):
            options = (options + ", " if options else "") + "see its docstring"
        rows.append(f"| `{name}` | {_first_line(factory)} | {options or 'none'} |")
    return "\n".join(rows).replace("'", '"')


def cli_reference(parser: argparse.ArgumentParser) -> str:
    """The Markdown page of every ``fedcmi`` subcommand and option."""
    out = [
        "# CLI reference",
        "",
        "Generated from the argparse parser of `fedcmi` (`make reference`).",
        "Every command prints this with `--help`.",
    ]
    out += _command(parser, "fedcmi", level=2)
    return "\n".join(out) + "\n"


def _command(
    parser: argparse.ArgumentParser, path: str, level: int, help_text: str = ""
) -> list[str]:
    lines = ["", f"{'#' * level} `{path}`", ""]
    if help_text:
        lines += [" ".join(help_text.split()), ""]
    usage = parser.format_usage().replace("usage: ", "").strip()
    lines += ["```text", " ".join(usage.split()), "```", ""]
    children: list[tuple[str, argparse.ArgumentParser, str]] = []
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            children += [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(action.option_strings) or action.dest
        detail = action.help or ""
        if action.choices:
            detail += (" " if detail else "") + "one of: " + ", ".join(map(str, action.choices))
        if action.default not in (None, False, [], argparse.SUPPRESS):
            detail += f" (default: `{action.default}`)"
        detail = detail.replace("%%", "%").replace("|", "\\|")
        detail = detail.replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `{name}` | {detail} |")
    if rows:
        lines += ["| argument | meaning |", "|---|---|", *rows]
    for name, sub, help_text in children:
        lines += _command(sub, f"{path} {name}", min(level + 1, 4), help_text)
    return lines
