"""Garbage-collector settings for the long-running processes (API and worker).

Measured on the ingest benchmark (one API process, distinct Shopify orders): the cyclic
collector took 0.64 ms of CPU per webhook, a quarter of the API's, because every full
collection walked the ~200k objects start-up leaves behind (config, rules, connectors,
SQLAlchemy and pydantic schemas), none of which ever becomes garbage; and a webhook's
allocations set the young generation off every few hundred objects. After freezing the
start-up heap and raising the thresholds: 0.04 ms.
"""

from __future__ import annotations

import gc

# young: collections per ~20k container allocations instead of 700 (a webhook allocates a
# few thousand; what a collection walks is what is still alive, a few requests' worth)
THRESHOLDS = (20_000, 20, 100)
_frozen = False


def freeze_startup_heap() -> None:
    """Move everything alive now out of the collector's sight (it stays alive; nothing is
    freed or leaked by this) and collect the young generations less often. Call once the
    process has started, before it takes work; later calls (a test process starting many
    apps) do nothing, so what later apps leave behind stays collectable."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
