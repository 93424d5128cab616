"""Cross-reference checks: what is well-formed field by field but does not fit together.

Unique connection ids, known connector types, the credentials and options each connector
needs, poll streams it has, routes whose ends exist and carry the flow, mappings of known
connections, valid rules; then each connector built once without network, as ``serve``
will. Every problem is a path in the YAML document and a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from app.configuration.monitoring import monitoring_problems
from app.configuration.problems import Problem, pydantic_problems, suggest
from kernel.mappings import MAPPING_KINDS

if TYPE_CHECKING:  # the models call these checks when they validate
    from app.configuration.models import ConnectionConfig, GatewayConfig, Route


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
                    + suggest(conn.type, known),
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
                        f"connection {end!r}" + suggest(end, first),
                    )
                )
    problems += _route_problems(config, known)
    for kind, per_conn in config.mappings.items():
        if kind not in MAPPING_KINDS:
            problems.append(
                (
                    ("mappings", kind),
                    f"unknown mapping kind {kind!r}" + suggest(kind, MAPPING_KINDS),
                )
            )
        for conn_id in per_conn:
            if conn_id not in first:
                problems.append(
                    (
                        ("mappings", kind, conn_id),
                        f"mappings.{kind} names unknown connection {conn_id!r}"
                        + suggest(conn_id, first),
                    )
                )
    problems += _monitoring_problems(config)
    if config.rules:
        from app.flows.rules import RulesConfig

        try:
            RulesConfig.model_validate(config.rules)
        except ValidationError as exc:
            problems += pydantic_problems(exc, RulesConfig, ("rules",))
    return problems


def _monitoring_problems(config: GatewayConfig) -> list[Problem]:
    """Floors and poll watches name flows, connections and streams the config has."""
    sources: dict[str, set[str]] = {}
    for route in config.routes:
        sources.setdefault(route.flow, set()).add(route.from_)
    polls = {c.id: set(c.poll.streams) for c in config.connections if c.poll is not None}
    return monitoring_problems(config.monitoring, sources, polls)


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
            problems.append(((*at, key), message + suggest(key, fields)))
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
            for path, message in pydantic_problems(exc, cls.Credentials, at)
        ]
    return problems


def _option_problems(index: int, conn: ConnectionConfig, cls: Any) -> list[Problem]:
    """The connection's ``options:`` against the connector's Options model."""
    try:
        cls.Options.model_validate(conn.options)
    except ValidationError as exc:
        return pydantic_problems(exc, cls.Options, ("connections", index, "options"))
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
