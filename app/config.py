"""The YAML config: connections, routes, mappings, rules.

Loaded once at start. Errors name the field and the line so an operator can fix the file
without guessing; ``${VAR}`` pulls secrets from the environment so the file itself can be
committed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

Flow = Literal["orders", "inventory", "products", "customers", "shipments", "returns"]
FLOWS: tuple[str, ...] = ("orders", "inventory", "products", "customers", "shipments", "returns")

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The config file is unusable; ``problems`` lists one human-readable line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class DeliveryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=8, ge=1, description="attempts before a delivery is dead")
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1, description="failures in a row that open")
    breaker_reset_seconds: float = Field(default=30.0, gt=0, description="open → half-open")
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(
        default=4, ge=1, description="calls in flight to this destination, per worker process"
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

    @model_validator(mode="after")
    def _references_resolve(self) -> GatewayConfig:
        from connectors.registry import connector_types

        known = connector_types()
        ids = [c.id for c in self.connections]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"connection ids must be unique, repeated: {', '.join(dupes)}")
        for conn in self.connections:
            if conn.type not in known:
                raise ValueError(
                    f"connection {conn.id!r} has unknown type {conn.type!r}; "
                    f"known types: {', '.join(sorted(known))}"
                )
        for route in self.routes:
            for end in (route.from_, route.to):
                if end not in ids:
                    raise ValueError(
                        f"route {route.flow} {route.from_}→{route.to} names unknown "
                        f"connection {end!r}"
                    )
        for conn in self.connections:
            if conn.poll is not None:
                streams = known[conn.type].poll_streams
                unknown = [s for s in conn.poll.streams if s not in streams]
                if unknown:
                    raise ValueError(
                        f"connection {conn.id!r} cannot poll {', '.join(unknown)}; "
                        f"{conn.type} polls: {', '.join(sorted(streams)) or 'nothing'}"
                    )
        if self.rules:
            from app.flows.rules import RulesError, parse_rules

            try:
                parse_rules(self.rules)
            except RulesError as exc:
                raise ValueError(str(exc)) from None
        for kind, per_conn in self.mappings.items():
            for conn_id in per_conn:
                if conn_id not in ids:
                    raise ValueError(f"mappings.{kind} names unknown connection {conn_id!r}")
        return self

    def connection(self, connection_id: str) -> ConnectionConfig | None:
        return next((c for c in self.connections if c.id == connection_id), None)

    def routes_from(self, connection_id: str, flow: str) -> list[Route]:
        return [r for r in self.routes if r.from_ == connection_id and r.flow == flow]

    def policy_for(self, connection_id: str) -> DeliveryPolicy:
        conn = self.connection(connection_id)
        return conn.delivery if conn and conn.delivery else self.delivery


# --- loading -------------------------------------------------------------------------


def _line_index(
    node: yaml.Node, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Yield (path, 1-based line) for every node so validation errors can name a line."""
    yield path, node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield from _line_index(value_node, (*path, key_node.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _line_index(item, (*path, i))


def _expand_env(
    value: Any, path: tuple[Any, ...], missing: list[tuple[tuple[Any, ...], str]]
) -> Any:
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.append((path, name))
                return ""
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), missing) for i, v in enumerate(value)]
    return value


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(text: str, source: str = "<config>") -> GatewayConfig:
    """Parse and validate config text; raise ConfigError naming field and line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"not valid YAML: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping (connections:, routes:, …)"])
    lines = dict(_line_index(node)) if node is not None else {}

    def line_of(path: tuple[Any, ...]) -> str:
        while path and path not in lines:
            path = path[:-1]
        return f"line {lines[path]}" if path in lines else "line ?"

    missing: list[tuple[tuple[Any, ...], str]] = []
    data = _expand_env(data, (), missing)
    if missing:
        raise ConfigError(
            source,
            [
                f"{line_of(p)}: {_dotted(p)} uses ${{{name}}} but the environment has no {name}"
                for p, name in missing
            ],
        )
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            # pydantic puts the field alias in loc; from_ is written "from" in YAML
            problems.append(f"{line_of(loc)}: {_dotted(loc)}: {err['msg']}")
        raise ConfigError(source, problems) from None


def load_config(path: str | Path | None) -> GatewayConfig:
    """Load the config file; no path means an empty config (the gateway still serves)."""
    if path is None:
        return GatewayConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read the config file: {exc.strerror}"]) from None
    return parse_config(text, str(p))
