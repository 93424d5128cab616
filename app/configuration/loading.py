"""Loading the config file: YAML with the line of every node, duplicate keys refused,
``${VAR}`` taken from the environment, then the models and the checks; every problem is
reported with its line and field."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.configuration.checks import connector_problems, option_warnings, reference_problems
from app.configuration.models import GatewayConfig
from app.configuration.problems import (
    DEFER_REFERENCES,
    ConfigError,
    Problem,
    dotted,
    pydantic_problems,
)


def _line_index(
    node: yaml.Node, path: tuple[Any, ...] = (), line: int | None = None
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Yield (path, 1-based line) for every node so problems can name a line; an entry of a
    mapping is at the line of its key."""
    yield path, line if line is not None else node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from _line_index(
                value_node, (*path, _key_of(key_node)), key_node.start_mark.line + 1
            )
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _line_index(item, (*path, i))


def _key_of(node: yaml.Node) -> Any:
    return node.value if isinstance(node, yaml.ScalarNode) else f"<{node.tag}>"


def _duplicate_keys(node: yaml.Node, path: tuple[Any, ...] = ()) -> Iterator[Problem]:
    """A key written twice in one mapping: YAML keeps the last silently, we refuse."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _key_of(key_node)
            if key in seen:
                yield (
                    (*path, key),
                    f"{key!r} is written twice in the same mapping (first at line {seen[key]})",
                )
            else:
                seen[key] = key_node.start_mark.line + 1
            yield from _duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, i))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ``${`` up to the next ``}`` (or the end of the text: unclosed)
_ENV_TOKEN = re.compile(r"\$\{([^}]*)(\}?)")


def _expand_env(value: Any, path: tuple[Any, ...], problems: list[Problem]) -> Any:
    """Replace ``${VAR}``; a missing variable, ``${VAR`` (unclosed), ``${}`` or ``${1BAD}``
    is a problem, never used literally (it would become a wrong secret)."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, closed = match.group(1), match.group(2)
            shown = name if len(name) <= 40 else name[:40] + "…"
            if not closed:
                problems.append(
                    (path, f"${{{shown} is not closed: write ${{NAME}} to use the variable NAME")
                )
            elif not _ENV_NAME.fullmatch(name):
                problems.append(
                    (
                        path,
                        f"${{{shown}}} is not a variable reference: a name is letters, digits "
                        "and _, not starting with a digit",
                    )
                )
            elif name not in os.environ:
                problems.append((path, f"uses ${{{name}}} but the environment has no {name}"))
            else:
                return os.environ[name]
            return ""

        return _ENV_TOKEN.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), problems) for i, v in enumerate(value)]
    return value


def _load_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The document's node tree (for lines) and its data; ConfigError naming file, line and
    column for bad YAML."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # e.g. a control character: reported before parsing
        raise ConfigError(source, [f"not valid YAML in {source}: {exc}"]) from None
    loader.name = source  # marks (and so messages) name the file, not "<unicode string>"
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        detail = exc.problem or exc.context or "cannot be parsed"
        if exc.context and exc.problem and exc.context_mark:
            cm = exc.context_mark
            detail += f" ({exc.context} at line {cm.line + 1}, column {cm.column + 1})"
        raise ConfigError(source, [f"{where}not valid YAML in {source}: {detail}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML in {source}: {exc}"]) from None
    finally:
        loader.dispose()
    return node, data


def parse_config(text: str, source: str = "<config>") -> GatewayConfig:
    """Parse and validate config text; raise ConfigError naming field and line.

    Accepts exactly what ``serve`` can start with: fields, references between them,
    credentials each connector type needs, and each connector built once (no network).
    """
    node, data = _load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping (connections:, routes:, …)"])
    lines = dict(_line_index(node)) if node is not None else {}

    def line_no(path: tuple[Any, ...]) -> int:
        while path and path not in lines:
            path = path[:-1]
        return lines.get(path, 0)

    def fail(problems: list[Problem]) -> ConfigError:
        ordered = sorted(problems, key=lambda p: line_no(p[0]))
        return ConfigError(
            source,
            [
                f"line {line_no(path) or '?'}: {dotted(path)}: {message}"
                for path, message in ordered
            ],
        )

    problems: list[Problem] = list(_duplicate_keys(node)) if node is not None else []
    data = _expand_env(data, (), problems)
    if problems:
        raise fail(problems)
    try:
        config = GatewayConfig.model_validate(data, context={DEFER_REFERENCES: True})
    except ValidationError as exc:
        raise fail(pydantic_problems(exc, GatewayConfig)) from None
    problems = reference_problems(config) or connector_problems(config)
    if problems:
        raise fail(problems)
    config._warnings = [
        f"line {line_no(path) or '?'}: {message}" for path, message in option_warnings(config)
    ]
    return config


def load_config(path: str | Path | None) -> GatewayConfig:
    """Load the config file; no path means an empty config (the gateway still serves)."""
    if path is None:
        return GatewayConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read the config file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [f"the config file is not UTF-8 text: {exc.reason}"]) from None
    return parse_config(text, str(p))
