"""Every log line is one JSON object, tracebacks of stdlib and arq loggers included."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from app.observability.logging import configure_logging
from app.settings import Settings


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(Settings(log_format="json"))
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = []


@pytest.mark.parametrize("name", ["uvicorn.error", "arq.worker", "some.library"])
def test_stdlib_exceptions_are_one_json_line_with_the_traceback(
    json_logs: io.StringIO, name: str
) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger(name).exception("job failed")
    lines = [line for line in json_logs.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["event"] == "job failed" and record["level"] == "error"
    assert "Traceback" in record["exception"] and "ValueError: boom" in record["exception"]


def test_structlog_exceptions_too(json_logs: io.StringIO) -> None:
    try:
        raise KeyError("x")
    except KeyError:
        structlog.get_logger("gateway").exception("delivery crashed", delivery_id=7)
    (line,) = [ln for ln in json_logs.getvalue().splitlines() if ln.strip()]
    record = json.loads(line)
    assert record["delivery_id"] == 7 and "KeyError" in record["exception"]
