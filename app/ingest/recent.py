"""The bodies this process stored (or was re-sent) lately, by connection, topic and hash.

A sender that re-sends the same body (a retry under a new webhook id, a replay) is answered
from the stored original in one read, without the body's events being planned again first:
a body seen here is in the database (stored rows are never deleted, only their bodies
purged). A miss costs nothing; a hit whose original is not found (another database) takes
the usual path.
"""

from __future__ import annotations

from collections import OrderedDict

BodyKey = tuple[str, str, str]  # connection id, topic, SHA-256 of the body


class RecentBodies:
    """A bounded LRU set: memory stays flat however many webhooks come."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: OrderedDict[BodyKey, None] = OrderedDict()

    def __contains__(self, key: BodyKey) -> bool:
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: BodyKey) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)


RECENT_BODIES = RecentBodies()
