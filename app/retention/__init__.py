"""Retention: what the gateway no longer needs is purged after the config's horizons.

The scheduled ``retention`` job (``job.run_retention``, run by ``run_due_jobs`` like the
other jobs, one process at a time) walks each kind in id order, one short transaction per
batch of ``retention.batch_size`` rows, so ingest and delivery never wait on it for more
than one batch:

- ``inbound_bodies``: raw bodies and headers are blanked (``purged_at`` set); the row, its
  dedupe key and body hash stay, so a re-sent old webhook is still a duplicate. Quarantined
  ones stay whole: they wait for a replay.
- ``payloads``: a canonical event's payload and its deliveries' payloads, once every
  delivery of it is final (not pending, in flight, parked or held). The newest event of each
  entity and type stays (dedupe and amendments compare with it), as does an erase request
  still being carried out. A delivery whose payload is gone is never replayed (409).
- ``attempt_logs``: attempts (with their HTTP exchanges) of final deliveries are deleted;
  the delivery keeps its attempt count.
- ``findings``: deleted.

Entity links, mappings, customer matches, stock and price state, erasure records and the
audit trail are never touched. ``purge`` holds one batch of each kind, ``job`` the loop,
its progress (logs and ``GET /api/v1/jobs``) and its pace.
"""
