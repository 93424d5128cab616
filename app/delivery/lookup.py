"""What an attempt looks up besides its event: the mappings it needs or may use, and the
remote ids of the entities it names. Known when the delivery is written (its connector and
event are known then), stored on it as ``lookup``, so the claim's UPDATE returns the rows
with the lease (``PREFETCHED``): one round trip per delivery less than reading them after.

The rows are read at claim time, as a look-up after the claim would read them: a mapping
added between the write and the attempt is found. What the stored keys do not cover (a
delivery written before them, by a path that does not know them, or asking for more on a
retry) is read after the claim as before (``covers``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kernel.canonical.events import CanonicalEvent
from kernel.contract import Connector
from kernel.mappings import mapping_needs
from kernel.types import MappingNeed

Lookup = dict[str, list[Any]]  # {"mappings": [[kind, key], …], "related": [key, …]}


def needs_of(
    connector: Connector | None, event: CanonicalEvent, directives: dict[str, Any] | None
) -> tuple[list[MappingNeed], list[MappingNeed]]:
    """The mappings the attempt requires (the connector's and the rules'), and those it
    uses when they exist. Raises what the connector raises."""
    needs = connector.required_mappings(event) if connector else []
    optional = mapping_needs(event, connector.mapping_kinds) if connector else []
    return list(dict.fromkeys(needs + rule_needs(directives))), optional


def rule_needs(directives: dict[str, Any] | None) -> list[MappingNeed]:
    """Mappings the flow rules require (e.g. payment method), resolved like a connector's."""
    wanted = (directives or {}).get("required_mappings") or {}
    return [MappingNeed(kind, key) for kind, keys in wanted.items() for key in keys]


def lookup_for(
    connector: Connector | None, event: CanonicalEvent, directives: dict[str, Any] | None
) -> Lookup | None:
    """The ``lookup`` of a delivery of ``event`` as it is; None when the connector cannot
    say (the claim then asks it again and reads after the claim)."""
    try:
        needs, optional = needs_of(connector, event, directives)
    except Exception:  # a connector bug shows (and is retried) at the claim, not at ingest
        return None
    pairs = dict.fromkeys((n.kind, n.key) for n in needs + optional)
    return {"mappings": [list(p) for p in pairs], "related": event.related_keys()}


def covers(lookup: Lookup | None, wanted: list[MappingNeed], related: list[str]) -> bool:
    """Whether the rows read for ``lookup`` hold every one ``wanted`` and ``related`` ask."""
    if lookup is None:
        return False
    pairs = {(kind, key) for kind, key in lookup.get("mappings", ())}
    return all((n.kind, n.key) in pairs for n in wanted) and set(related) <= set(
        lookup.get("related", ())
    )


def split_rows(
    rows: list[list[str]] | None, wanted: list[MappingNeed], related: list[str]
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    """Rows ``[src, a, b, c]`` (``m``: kind, our key, their key; ``l``: entity type, our
    key, remote id) as the mappings by kind and the remote ids by (entity type, our key)."""
    found: dict[str, dict[str, str]] = {}
    links: dict[tuple[str, str], str] = {}
    wanted_set, related_set = set(wanted), set(related)
    for src, a, b, c in rows or ():
        if src == "l":
            if b in related_set:
                links[(a, b)] = c
        elif MappingNeed(a, b) in wanted_set:
            found.setdefault(a, {})[b] = c
    return found, links


# Postgres: the rows of a delivery's ``lookup``, read in the claim's RETURNING (the UPDATE's
# row is ``deliveries``). One index look-up per pair and per key (a LATERAL each, as the
# ingest's statement does): a generic plan of ``IN (array)`` may scan a table that grew.
PREFETCHED = sa.literal_column(
    """(
    SELECT jsonb_agg(jsonb_build_array(x.src, x.a, x.b, x.c)) FROM (
        SELECT 'm' AS src, m.kind AS a, m.our_key AS b, m.their_key AS c
        FROM jsonb_array_elements(deliveries.lookup -> 'mappings') AS want(pair)
        CROSS JOIN LATERAL (
            SELECT mp.kind, mp.our_key, mp.their_key FROM mappings mp
            WHERE mp.kind = want.pair ->> 0 AND mp.connection_id = deliveries.destination
                AND mp.our_key = want.pair ->> 1
            LIMIT 1
        ) m
        UNION ALL
        SELECT 'l', l.entity_type, l.our_key, l.remote_id
        FROM jsonb_array_elements_text(deliveries.lookup -> 'related') AS rel(key)
        CROSS JOIN LATERAL (
            SELECT el.entity_type, el.our_key, el.remote_id FROM entity_links el
            WHERE el.connection_id = deliveries.destination AND el.our_key = rel.key
        ) l
    ) x
)""",
    type_=postgresql.JSONB(),
).label("prefetched")
