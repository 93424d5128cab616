"""The audit trail: operator actions (who, what, on what, when), kept for good.

``record_action`` writes one row in the transaction of the action it describes, so an
action that fails (404, 409, a rollback) leaves no row and one that commits always has
one. The actor is a fingerprint of the API key (``key:<first 8 hex of its SHA-256>``),
never the key, and the key's role; erase requests name the connection that sent them.
Listed by ``GET /api/v1/audit``.
"""
