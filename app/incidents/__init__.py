"""Incidents: silent failures found by the gateway itself, and the notifications about them.

``detectors`` (pure functions) judge facts that ``stats`` reads from the database;
``engine`` raises and resolves incidents from their observations; ``notices`` and ``sinks``
send one firing and one resolved message per incident to each configured sink; ``job`` is
the scheduled run; ``router`` is the operator API.
"""
