"""The YAML config in pieces; everyone else imports it from ``app.config``.

``models`` is the schema (connections, routes, mappings, rules, delivery policy);
``loading`` reads the file (YAML with line numbers, ``${VAR}``, duplicate keys) and
validates it; ``checks`` finds what is well-formed field by field but does not fit together
(references, credentials and options each connector needs, routes both ends can carry);
``problems`` turns every problem into one line that names the field.
"""
