"""``erp-gateway``: a failing command is one line on stderr and a non-zero exit; the
traceback only with --debug (or GATEWAY_LOG_LEVEL=DEBUG)."""

from __future__ import annotations

import argparse

import pytest

from app import cli


def broken(_: argparse.Namespace) -> None:
    raise RuntimeError("the flux capacitor is\nout of order")


@pytest.fixture
def broken_migrate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "cmd_migrate", broken)
    monkeypatch.delenv("GATEWAY_LOG_LEVEL", raising=False)


@pytest.mark.usefixtures("broken_migrate")
def test_an_unexpected_failure_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["migrate"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        "erp-gateway migrate: RuntimeError: the flux capacitor is out of order "
        "(run with --debug to see where)\n"
    )


@pytest.mark.usefixtures("broken_migrate")
@pytest.mark.parametrize("argv", [["--debug", "migrate"], ["migrate", "--debug"]])
def test_debug_shows_the_traceback(argv: list[str]) -> None:
    with pytest.raises(RuntimeError, match="flux capacitor"):
        cli.main(argv)


@pytest.mark.usefixtures("broken_migrate")
def test_debug_log_level_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOG_LEVEL", "debug")
    with pytest.raises(RuntimeError):
        cli.main(["migrate"])


def test_a_bad_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.get_settings.cache_clear()
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "two megabytes")
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["migrate"])
    finally:
        cli.get_settings.cache_clear()
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("erp-gateway migrate: GATEWAY_MAX_BODY_BYTES: Input should be")
