"""Config problems: a path in the YAML document and a message, made readable.

The loader turns each path into a line number; these helpers name fields as written in
YAML (``connections[0].credentials``), suggest near misses and translate pydantic errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

# (path in the YAML document, message): the loader turns the path into a line number
Problem = tuple[tuple[Any, ...], str]
# validation context key: the loader checks references itself, so each names its line
DEFER_REFERENCES = "defer_references"


class ConfigError(Exception):
    """The config file is unusable; ``problems`` lists one human-readable line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def suggest(word: str, options: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a near miss, else the list of what is known."""
    known = sorted(options)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(known)}" if known else ""


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` (below ``model``) accepts, as written in YAML."""
    tp: Any = model
    for part in loc:
        tp = _strip_optional(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next(
                (f for name, f in tp.model_fields.items() if part in (name, f.alias)), None
            )
            if field is None:
                return []
            tp = field.annotation
        elif isinstance(part, int) and get_origin(tp) is list:
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _strip_optional(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or name for name, f in tp.model_fields.items()]
    return []


def pydantic_problems(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])  # pydantic gives the alias: from_ is "from", as in YAML
        message = err["msg"]
        if err["type"] == "extra_forbidden" and loc:
            message = "unknown key" + suggest(str(loc[-1]), _fields_at(model, loc[:-1]))
        problems.append(((*prefix, *loc), message))
    return problems
