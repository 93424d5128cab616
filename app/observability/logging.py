"""Structured logging: one JSON object a line in production, readable lines in a terminal.

Call sites bind ids (``event_id``, ``delivery_id``, ``connection_id``) with
``structlog.contextvars.bound_contextvars`` so every line of a unit of work carries them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from app.settings import Settings

_SECRET_KEYS = ("secret", "token", "password", "authorization", "api_key", "signature")


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "***"
    return event_dict


def configure_logging(settings: Settings) -> None:
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    level = logging.getLevelName(settings.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Route stdlib loggers (uvicorn, arq, alembic) through the same renderer.
    handler = logging.StreamHandler(sys.stderr)
    # A stdlib record's traceback (uvicorn, arq, alembic, logging.exception) becomes one field
    # of the same line, so the JSON stream stays one object a line.
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([structlog.processors.format_exc_info] if use_json else []),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "arq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs are noisy at load; keep them at warning unless asked for debug. The same
    # for a line per outgoing request (httpx) and per job (arq): every delivery attempt logs
    # one line of its own with its ids and outcome, and stores its redacted requests.
    for name in ("uvicorn.access", "httpx", "arq.worker", "arq.jobs"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
