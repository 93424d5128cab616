"""Simulators of the systems the gateway connects: ASGI apps that speak each documented API
subset (auth, errors, paging, rate limits, quirks) and inject faults.

Tests, the demo and the benchmarks use them; the gateway never imports them at run time and
the production image leaves them out (checked by import-linter in ``make lint``).
"""
