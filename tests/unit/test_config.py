"""Config loading: secrets from the environment, errors that name the line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, load_config, parse_config
from app.settings import Settings

GOOD = """
connections:
  - id: shop-eu
    type: shopify
    base_url: https://shop-eu.myshopify.com
    credentials: {access_token: "${SHOP_TOKEN}", webhook_secret: "${SHOP_SECRET}"}
  - id: erp
    type: netsuite
    base_url: https://1234567.suitetalk.api.netsuite.com
    credentials:
      {account_id: 1234567, consumer_key: ck, consumer_secret: cs, token_id: t, token_secret: ts}
routes:
  - {flow: orders, from: shop-eu, to: erp}
mappings:
  sku: {erp: {"TSHIRT-RED-M": "1042"}}
"""


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "shpat_abc")
    monkeypatch.setenv("SHOP_SECRET", "s3cret")
    config = parse_config(GOOD)
    shop = config.connection("shop-eu")
    assert shop is not None and shop.secret("webhook_secret") == "s3cret"
    assert "s3cret" not in repr(config) and "s3cret" not in config.model_dump_json()
    assert config.routes_from("shop-eu", "orders")[0].to == "erp"
    assert config.mappings["sku"]["erp"]["TSHIRT-RED-M"] == "1042"
    erp = config.connection("erp")
    assert erp is not None and erp.secret("account_id") == "1234567"  # YAML number → text


def test_missing_env_var_names_the_variable_field_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "x")
    monkeypatch.delenv("SHOP_SECRET", raising=False)
    with pytest.raises(ConfigError) as err:
        parse_config(GOOD, "gateway.yaml")
    (problem,) = err.value.problems
    assert "line 6" in problem and "SHOP_SECRET" in problem
    assert "connections[0].credentials.webhook_secret" in problem


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "connections:\n  - id: a\n    type: nosuch\n    base_url: https://x\n",
            "unknown type 'nosuch'",
        ),
        (
            "connections:\n  - id: a\n    type: shopify\n    base_url: ftp://x\n",
            "line 4: connections[0].base_url",
        ),
        ("routes:\n  - {flow: orders, from: a, to: b}\n", "unknown connection 'a'"),
        ("routes:\n  - {flow: invoices, from: a, to: b}\n", "line 2: routes[0].flow"),
        ("connections: [\n", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("connectionz: []\n", "connectionz: Extra inputs are not permitted"),
    ],
)
def test_invalid_configs_say_what_and_where(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(yaml_text, "gateway.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_duplicate_connection_ids_are_rejected() -> None:
    text = (
        "connections:\n"
        "  - {id: a, type: shopify, base_url: 'https://x'}\n"
        "  - {id: a, type: shopify, base_url: 'https://y'}\n"
    )
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config(text)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_api_keys_parse_and_reject_bad_roles() -> None:
    assert Settings(api_keys="k1:viewer, k2:operator").parsed_api_keys() == {
        "k1": "viewer",
        "k2": "operator",
    }
    with pytest.raises(ValueError, match="must be key:viewer or key:operator"):
        Settings(api_keys="k1:admin").parsed_api_keys()


def test_check_config_command_reports_errors_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "gateway.yaml"
    bad.write_text("routes:\n  - {flow: orders, from: a, to: b}\n")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "check-config"],
        env={"GATEWAY_CONFIG": str(bad), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown connection 'a'" in result.stderr
