"""GATEWAY_TOKEN_KEY: a Fernet key or nothing; a bad one stops every command with one line
that names the variable, says how to make a key, and does not echo what was given."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app import cli
from app.settings import Settings
from app.tokens import token_cipher


def test_a_bad_token_key_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.get_settings.cache_clear()
    monkeypatch.setenv("GATEWAY_TOKEN_KEY", "hunter2-not-a-key")
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["migrate"])
    finally:
        cli.get_settings.cache_clear()
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("erp-gateway migrate: GATEWAY_TOKEN_KEY: ")
    assert "not a Fernet key" in line and "Fernet.generate_key()" in line
    assert "hunter2" not in line


def test_a_bad_token_key_is_not_echoed_in_the_validation_error() -> None:
    with pytest.raises(ValueError) as caught:
        Settings(token_key="hunter2-not-a-key")
    assert "hunter2" not in str(caught.value)


def test_a_token_key_makes_a_cipher_and_none_or_blank_makes_none() -> None:
    key = Fernet.generate_key().decode()
    cipher = token_cipher(Settings(token_key=key))
    assert cipher is not None
    assert Fernet(key).decrypt(cipher.encrypt(b"token")) == b"token"
    assert token_cipher(Settings()) is None
    assert token_cipher(Settings(token_key="")) is None
