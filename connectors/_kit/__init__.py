"""Pieces every connector shares, so each does them one way: header lookup and checks
(``headers``), HMAC signatures (``signatures``), ``Retry-After`` (``retry_after``), HTTP
status → typed error and one send helper (``http``), OAuth 2 tokens (``oauth2``).

The kit builds on the kernel and well-kept libraries only; it knows no system in particular.
"""
