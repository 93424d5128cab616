"""The shared kernel: what connectors and the gateway core both build on.

The canonical model (``kernel.canonical``), the connector contract (``kernel.contract``), the
typed errors that steer delivery (``kernel.errors``) and the values that cross the boundary
(``kernel.types``). It imports nothing from ``app`` or ``connectors``: connectors build on it,
and the core builds on both (checked by import-linter in ``make lint``).
"""
