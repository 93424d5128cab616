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
        ("connectionz: []\n", "connectionz: unknown key; did you mean 'connections'?"),
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
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert any(
        p.startswith("line 3: connections[1].id: connection id 'a' is already used")
        for p in err.value.problems
    ), err.value.problems


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


# --- every problem names its line; check-config accepts only what serve starts with ----------

SHOP = """  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {webhook_secret: s3cret, access_token: shpat_x}
"""
ERP_CREDS = "account_id: 1, consumer_key: ck, consumer_secret: cs, token_id: t, token_secret: ts"


def erp(credentials: str = ERP_CREDS, extra: str = "") -> str:
    return f"""  - id: erp
    type: netsuite
    base_url: https://1234567.suitetalk.api.netsuite.com
    credentials: {{{credentials}}}
{extra}"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "gateway.yaml")
    return err.value.problems


def test_a_missing_netsuite_credential_names_connection_key_and_line() -> None:
    creds = ERP_CREDS.replace(", token_secret: ts", "")
    (problem,) = problems_of(f"connections:\n{SHOP}{erp(creds)}")
    assert problem.startswith("line 9: connections[1].credentials: "), problem
    assert "'erp'" in problem and "'token_secret'" in problem


def test_shopify_needs_its_webhook_secret_and_access_token() -> None:
    shop = SHOP.replace("webhook_secret: s3cret, ", "")
    (problem,) = problems_of(f"connections:\n{shop}")
    assert problem.startswith("line 5: connections[0].credentials: ")
    assert "'shop'" in problem and "'webhook_secret'" in problem
    (problem,) = problems_of(f"connections:\n{SHOP.replace(', access_token: shpat_x', '')}")
    assert "'access_token'" in problem


def test_an_empty_credential_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY_SECRET", "")
    shop = SHOP.replace("s3cret", '"${EMPTY_SECRET}"')
    (problem,) = problems_of(f"connections:\n{shop}")
    assert "line 5: connections[0].credentials.webhook_secret:" in problem and "empty" in problem


def test_an_unknown_credential_key_suggests_the_right_one() -> None:
    creds = ERP_CREDS.replace("token_secret", "token_secert")
    found = problems_of(f"connections:\n{erp(creds)}")
    assert any(
        "connections[0].credentials.token_secert: unknown credential" in p
        and "did you mean 'token_secret'?" in p
        for p in found
    ), found


def test_netsuite_needs_a_webhook_secret_only_for_flows_it_sends_by_webhook() -> None:
    routes = "routes:\n  - {flow: inventory, from: erp, to: shop}\n"
    (problem,) = problems_of(f"connections:\n{SHOP}{erp()}{routes}")
    assert problem.startswith("line 9: connections[1].credentials: ")
    assert "'webhook_secret'" in problem and "inventory" in problem
    # polling the flow instead: no webhooks, no secret needed
    polls = "    poll: {streams: [inventory]}\n"
    parse_config(f"connections:\n{SHOP}{erp(extra=polls)}{routes}")
    # receiving only (orders go to NetSuite): no secret needed either
    parse_config(f"connections:\n{SHOP}{erp()}routes:\n  - {{flow: orders, from: shop, to: erp}}\n")
    with_secret = erp(ERP_CREDS + ", webhook_secret: wh")
    parse_config(f"connections:\n{SHOP}{with_secret}{routes}")


@pytest.mark.parametrize("ref", ["${SHOP_SECRET", "${1BAD}", "${}", "pre-${A B}"])
def test_a_malformed_variable_reference_is_an_error_never_a_secret(ref: str) -> None:
    shop = SHOP.replace("s3cret", f'"{ref}"')
    (problem,) = problems_of(f"connections:\n{shop}")
    assert problem.startswith("line 5: connections[0].credentials.webhook_secret: "), problem
    assert ref.removeprefix("pre-") in problem


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "delivery:\n  backoff_base_secs: 3\n",
            "line 2: delivery.backoff_base_secs: unknown key; did you mean 'backoff_base_seconds'?",
        ),
        (
            f"connections:\n{SHOP}    delivery: {{requets_timeout_seconds: 5}}\n",
            "line 6: connections[0].delivery.requets_timeout_seconds: unknown key; "
            "did you mean 'request_timeout_seconds'?",
        ),
        (
            f"connections:\n{SHOP}    base_ulr: https://x\n",
            "line 6: connections[0].base_ulr: unknown key; did you mean 'base_url'?",
        ),
        (
            f"connections:\n{erp()}    poll: {{streams: [inventory], intervall_seconds: 5}}\n",
            "line 6: connections[0].poll.intervall_seconds: unknown key; "
            "did you mean 'interval_seconds'?",
        ),
        (
            f"connections:\n{SHOP}routes:\n  - {{flow: orders, from: shop, too: shop}}\n",
            "line 7: routes[0].too: unknown key; did you mean 'to'?",
        ),
        (
            "rules:\n  pricing:\n    guard_percnt: 20\n",
            "line 3: rules.pricing.guard_percnt: unknown key; did you mean 'guard_percent'?",
        ),
    ],
)
def test_unknown_keys_say_what_was_meant(section: str, expected: str) -> None:
    found = problems_of(section)
    assert expected in found, found


def test_an_unknown_type_is_reported_at_its_own_line() -> None:
    third = """  - id: third
    base_url: https://x.example.com
    type: shopifi
"""
    (problem,) = problems_of(f"connections:\n{SHOP}{erp()}{third}")
    assert problem.startswith("line 12: connections[2].type: "), problem
    assert "unknown type 'shopifi'; did you mean 'shopify'?" in problem


def test_reference_problems_name_their_lines_and_are_all_reported() -> None:
    text = f"""connections:
{SHOP}{erp(extra="    poll: {streams: [inventory, orders]}")}
routes:
  - {{flow: orders, from: shop, to: erp}}
  - {{flow: inventory, from: erp, to: shopp}}
mappings:
  sku: {{erp: {{A: "1"}}, nope: {{B: "2"}}}}
rules:
  pricing: {{guard_percent: -5}}
"""
    found = problems_of(text)
    assert [p.split(":", 2)[:2] for p in found] == [
        ["line 10", " connections[1].poll.streams[1]"],
        ["line 13", " routes[1].to"],
        ["line 15", " mappings.sku.nope"],
        ["line 17", " rules.pricing.guard_percent"],
    ], found
    assert "unknown connection 'shopp'; did you mean 'shop'?" in found[1]


def test_an_unknown_mapping_kind_in_the_config_is_refused_with_the_known_ones() -> None:
    (problem,) = problems_of(f"connections:\n{SHOP}{erp()}mappings:\n  skus: {{erp: {{A: '1'}}}}\n")
    assert "mappings.skus" in problem and "unknown mapping kind 'skus'" in problem, problem
    assert "did you mean 'sku'?" in problem


def test_a_yaml_error_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("connections:\n  - id: a\n    type: [shopify\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (problem,) = err.value.problems
    assert str(path) in problem and "line 4, column 1" in problem, problem


def test_a_key_written_twice_is_an_error() -> None:
    (problem,) = problems_of("routes: []\nmappings: {}\nroutes: []\n")
    assert problem.startswith("line 3: routes: ") and "first at line 1" in problem


def test_options_and_credential_formats_are_checked_by_the_connectors_models() -> None:
    text = f"connections:\n{SHOP}    options: {{api_version: [2026]}}\n"
    (problem,) = problems_of(text)
    assert problem.startswith("line 6: connections[0].options.api_version: ")
    custom = """  - id: portal
    type: custom
    base_url: https://portal.example.com
    credentials: {webhook_secret: "whsec_not base64!"}
"""
    (problem,) = problems_of(f"connections:\n{custom}")
    assert problem.startswith("line 5: connections[0].credentials.webhook_secret: ")
    assert "not 'whsec_' followed by base64" in problem and "not base64!" not in problem


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_config_prints_every_problem_with_its_line_and_no_traceback(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "gateway.yaml"
    creds = ERP_CREDS.replace(", token_secret: ts", "")
    bad.write_text(
        f"connections:\n{SHOP}{erp(creds)}routes:\n  - {{flow: orders, from: shop, to: erpp}}\n"
    )
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(bad)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"config error in {bad}:"
    assert lines[1].startswith("  - line 9: connections[1].credentials: ")
    assert lines[2].startswith("  - line 11: routes[0].to: ")
    assert "Traceback" not in result.stderr and result.stdout == ""
    bad.write_text("connections: [\n")
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(bad)})
    assert result.returncode == 2 and str(bad) in result.stderr.splitlines()[1]


def test_check_config_ok_and_serve_refuse_the_same_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"connections:\n{SHOP}{erp()}routes:\n  - {{flow: orders, from: shop, to: erp}}\n"
    )
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: OK")
    (warning,) = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    assert warning.startswith("warning: line 6: connection 'erp': no discount_item_id"), warning
    config.write_text(f"connections:\n{SHOP.replace(', access_token: shpat_x', '')}")
    env = {
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'never.db'}",
    }
    for command in ("check-config", "serve"):
        result = run_cli(command, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert "'access_token'" in result.stderr and "Traceback" not in result.stderr


def test_check_config_names_a_misspelt_connector_option_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    misspelt = erp(extra="    options: {discount_itme_id: 7}\n")
    config.write_text(f"connections:\n{SHOP}{misspelt}")
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(config)})
    assert result.returncode == 2, result.stdout
    assert (
        "line 10: connections[1].options.discount_itme_id: unknown key; "
        "did you mean 'discount_item_id'?"
    ) in result.stderr, result.stderr
    fixed = erp(extra="    options: {discount_item_id: 7}\n")
    config.write_text(f"connections:\n{SHOP}{fixed}")
    result = run_cli("check-config", env={"GATEWAY_CONFIG": str(config)})
    assert result.returncode == 0 and "warning" not in result.stdout, result.stdout
