"""The YAML config: connections, routes, mappings, rules.

Loaded once at start. Errors name the field and the line so an operator can fix the file
without guessing; ``${VAR}`` pulls secrets from the environment so the file itself can be
committed.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Flow = Literal["orders", "inventory", "products", "customers", "shipments", "returns"]
FLOWS: tuple[str, ...] = ("orders", "inventory", "products", "customers", "shipments", "returns")


class ConfigError(Exception):
    """The config file is unusable; ``problems`` lists one human-readable line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _max_attempts_replaced(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_attempts" in data:
            raise ValueError(
                "max_attempts was replaced by retry_window_seconds: transient failures are "
                "retried for a time (default 72 h), not a count, and never while the "
                "destination is down"
            )
        return data

    retry_window_seconds: float = Field(
        default=72 * 3600,
        gt=0,
        description="how long transient failures of one delivery are retried (72 h, like the "
        "stores' own webhook retries) while its destination otherwise works; a destination "
        "that is down (breaker open) never dead-letters what waits for it",
    )
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1, description="failures in a row that open")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, description="open → half-open")
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(
        default=4, ge=1, description="calls in flight to this destination, per worker process"
    )
    max_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="calls per second to this destination, per worker process (unset: no cap)",
    )


class PollConfig(BaseModel):
    """Scheduled reading of changes from a system (ERPs without webhooks, or as a safety net)."""

    model_config = ConfigDict(extra="forbid")

    streams: list[str] = Field(min_length=1, description="e.g. inventory, customers, shipments")
    interval_seconds: float = Field(default=300.0, gt=0, description="time between polls")
    page_size: int = Field(default=200, ge=1, le=1000, description="rows per request")
    max_pages: int = Field(default=50, ge=1, description="pages per run; the rest next run")


class ConnectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    type: str
    base_url: str = Field(pattern=r"^https?://")
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    delivery: DeliveryPolicy | None = None
    poll: PollConfig | None = None

    @field_validator("credentials", mode="before")
    @classmethod
    def _scalars_as_text(cls, value: Any) -> Any:
        # YAML reads `account_id: 1234567` as a number; a credential is always text.
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, int | float) else v for k, v in value.items()}
        return value

    def secret(self, key: str) -> str:
        """The credential ``key``; KeyError names the connection so the message is useful."""
        try:
            return self.credentials[key].get_secret_value()
        except KeyError:
            raise KeyError(f"connection {self.id!r} has no credential {key!r}") from None


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    flow: Flow
    from_: str = Field(alias="from")
    to: str


class GatewayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionConfig] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    # kind → connection id → our key → their key
    mappings: dict[str, dict[str, dict[str, str]]] = Field(default_factory=dict)
    rules: dict[str, Any] = Field(default_factory=dict)
    delivery: DeliveryPolicy = Field(default_factory=DeliveryPolicy)
    # what real traffic will need that the options leave out (check-config prints them)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(self._warnings)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> GatewayConfig:
        if info.context and info.context.get(_DEFER_REFERENCES):
            return self  # the loader checks them itself, so each problem names its line
        problems = reference_problems(self)
        if problems:
            raise ValueError("; ".join(f"{_dotted(path)}: {msg}" for path, msg in problems))
        return self

    def connection(self, connection_id: str) -> ConnectionConfig | None:
        return next((c for c in self.connections if c.id == connection_id), None)

    def routes_from(self, connection_id: str, flow: str) -> list[Route]:
        return [r for r in self.routes if r.from_ == connection_id and r.flow == flow]

    def policy_for(self, connection_id: str) -> DeliveryPolicy:
        conn = self.connection(connection_id)
        return conn.delivery if conn and conn.delivery else self.delivery


# --- cross-reference checks ----------------------------------------------------------

# (path in the YAML document, message): the loader turns the path into a line number
Problem = tuple[tuple[Any, ...], str]
_DEFER_REFERENCES = "defer_references"


def _suggest(word: str, options: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for a near miss, else the list of what is known."""
    known = sorted(options)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known: {', '.join(known)}" if known else ""


def reference_problems(config: GatewayConfig) -> list[Problem]:
    """Everything that is well-formed field by field but does not fit together."""
    from connectors.registry import connector_types

    known = connector_types()
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, conn in enumerate(config.connections):
        if conn.id in first:
            problems.append(
                (
                    ("connections", i, "id"),
                    f"connection id {conn.id!r} is already used by connections[{first[conn.id]}]; "
                    "ids must be unique",
                )
            )
        else:
            first[conn.id] = i
    for i, conn in enumerate(config.connections):
        cls = known.get(conn.type)
        if cls is None:
            problems.append(
                (
                    ("connections", i, "type"),
                    f"connection {conn.id!r} has unknown type {conn.type!r}"
                    + _suggest(conn.type, known),
                )
            )
            continue
        problems += _credential_problems(i, conn, cls, config.routes)
        problems += _option_problems(i, conn, cls)
        if conn.poll is not None:
            for j, stream in enumerate(conn.poll.streams):
                if stream not in cls.poll_streams:
                    polls = ", ".join(sorted(cls.poll_streams)) or "nothing"
                    problems.append(
                        (
                            ("connections", i, "poll", "streams", j),
                            f"connection {conn.id!r} cannot poll {stream!r}; "
                            f"{conn.type} polls: {polls}",
                        )
                    )
    for r, route in enumerate(config.routes):
        for key, end in (("from", route.from_), ("to", route.to)):
            if end not in first:
                problems.append(
                    (
                        ("routes", r, key),
                        f"route {route.flow} {route.from_}→{route.to} names unknown "
                        f"connection {end!r}" + _suggest(end, first),
                    )
                )
    problems += _route_problems(config, known)
    for kind, per_conn in config.mappings.items():
        for conn_id in per_conn:
            if conn_id not in first:
                problems.append(
                    (
                        ("mappings", kind, conn_id),
                        f"mappings.{kind} names unknown connection {conn_id!r}"
                        + _suggest(conn_id, first),
                    )
                )
    if config.rules:
        from app.flows.rules import RulesConfig

        try:
            RulesConfig.model_validate(config.rules)
        except ValidationError as exc:
            problems += _pydantic_problems(exc, RulesConfig, ("rules",))
    return problems


def _credential_problems(
    index: int, conn: ConnectionConfig, cls: Any, routes: list[Route]
) -> list[Problem]:
    """Missing, empty and unknown credentials, as the connector's Credentials model has them."""
    at: tuple[Any, ...] = ("connections", index, "credentials")
    fields = cls.Credentials.model_fields
    required = {name for name, f in fields.items() if f.is_required()}
    webhook: frozenset[str] = cls.webhook_credentials
    problems: list[Problem] = []
    for key in conn.credentials:
        if key not in fields:
            message = f"unknown credential {key!r} for a {conn.type} connection"
            problems.append(((*at, key), message + _suggest(key, fields)))
    needed = dict.fromkeys(sorted(required), "")
    if webhook:
        polled = set(conn.poll.streams) if conn.poll else set()
        by_webhook = sorted({r.flow for r in routes if r.from_ == conn.id} - polled)
        if by_webhook:
            why = (
                f" to verify its webhooks for {', '.join(by_webhook)} (routes from "
                f"{conn.id!r} that it does not poll)"
            )
            for key in sorted(webhook):
                needed.setdefault(key, why)
    for key, why in needed.items():
        value = conn.credentials.get(key)
        if value is None:
            problems.append(
                (at, f"connection {conn.id!r} ({conn.type}) needs credential {key!r}{why}")
            )
        elif not value.get_secret_value():
            problems.append(
                ((*at, key), f"credential {key!r} of connection {conn.id!r} is empty{why}")
            )
    if problems:
        return problems
    secrets = {key: value.get_secret_value() for key, value in conn.credentials.items()}
    try:
        cls.Credentials.model_validate(secrets)
    except ValidationError as exc:  # a format the connector checks (e.g. whsec_<base64>)
        problems += [
            (path, message.replace(repr(secrets.get(str(path[-1]))), "***"))
            for path, message in _pydantic_problems(exc, cls.Credentials, at)
        ]
    return problems


def _option_problems(index: int, conn: ConnectionConfig, cls: Any) -> list[Problem]:
    """The connection's ``options:`` against the connector's Options model."""
    try:
        cls.Options.model_validate(conn.options)
    except ValidationError as exc:
        return _pydantic_problems(exc, cls.Options, ("connections", index, "options"))
    return []


def _route_problems(config: GatewayConfig, known: dict[str, Any]) -> list[Problem]:
    """Both ends of every route must carry its flow: the source sends it in (by webhook or a
    poll stream of that name), the destination takes it out."""
    problems: list[Problem] = []
    by_id = {c.id: c for c in config.connections}
    for r, route in enumerate(config.routes):
        source, target = by_id.get(route.from_), by_id.get(route.to)
        sender = known.get(source.type) if source is not None else None
        if sender is not None and route.flow not in sender.inbound_flows | sender.poll_streams:
            takes = ", ".join(sorted(sender.inbound_flows | sender.poll_streams)) or "nothing"
            problems.append(
                (
                    ("routes", r, "from"),
                    f"{route.from_!r} ({sender.type_name}) cannot be the source of {route.flow}; "
                    f"it sends: {takes}",
                )
            )
        receiver = known.get(target.type) if target is not None else None
        if receiver is not None and route.flow not in receiver.outbound_flows:
            takes = ", ".join(sorted(receiver.outbound_flows)) or "nothing"
            problems.append(
                (
                    ("routes", r, "to"),
                    f"{route.to!r} ({receiver.type_name}) cannot receive {route.flow}; "
                    f"it takes: {takes}",
                )
            )
    return problems


def option_warnings(config: GatewayConfig) -> list[Problem]:
    """What real traffic will need that a connection's options leave out (not errors)."""
    from connectors.registry import connector_types

    known = connector_types()
    warnings: list[Problem] = []
    for i, conn in enumerate(config.connections):
        cls = known.get(conn.type)
        if cls is None:
            continue
        try:
            options = cls.Options.model_validate(conn.options)
        except ValidationError:
            continue
        for warning in cls.option_warnings(options):
            warnings.append((("connections", i, "options"), f"connection {conn.id!r}: {warning}"))
    return warnings


def _refuse_network(request: Any) -> Any:
    raise RuntimeError("check-config builds connectors without network access")


def connector_problems(config: GatewayConfig) -> list[Problem]:
    """Build each connector once, without network, as serve will: constructor-time checks
    (options, secret formats) become config problems that name the connection."""
    import httpx

    from app.connections import build_connector

    http = httpx.AsyncClient(transport=httpx.MockTransport(_refuse_network), trust_env=False)
    problems: list[Problem] = []
    for i, conn in enumerate(config.connections):
        try:
            build_connector(conn, http)
        except Exception as exc:  # any failure here would stop serve: report it as config
            message = _one_line(exc)
            if repr(conn.id) not in message:
                message = f"connection {conn.id!r} ({conn.type}): {message}"
            problems.append((("connections", i), message))
    return problems


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and text.startswith(("'", '"')):
        text = text[1:-1]
    return text or type(exc).__name__


# --- loading -------------------------------------------------------------------------


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


def _dotted(path: tuple[Any, ...]) -> str:
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


def _pydantic_problems(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])  # pydantic gives the alias: from_ is "from", as in YAML
        message = err["msg"]
        if err["type"] == "extra_forbidden" and loc:
            message = "unknown key" + _suggest(str(loc[-1]), _fields_at(model, loc[:-1]))
        problems.append(((*prefix, *loc), message))
    return problems


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
                f"line {line_no(path) or '?'}: {_dotted(path)}: {message}"
                for path, message in ordered
            ],
        )

    problems: list[Problem] = list(_duplicate_keys(node)) if node is not None else []
    data = _expand_env(data, (), problems)
    if problems:
        raise fail(problems)
    try:
        config = GatewayConfig.model_validate(data, context={_DEFER_REFERENCES: True})
    except ValidationError as exc:
        raise fail(_pydantic_problems(exc, GatewayConfig)) from None
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
