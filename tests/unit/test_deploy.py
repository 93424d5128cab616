"""docker-compose.yml runs unattended: restarts, healthchecks the image can run, start order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    found: dict[str, Any] = compose["services"]
    return found


def test_every_long_running_service_restarts_unless_stopped() -> None:
    for name, service in services().items():
        expected = "no" if name == "migrate" else "unless-stopped"
        assert service.get("restart") == expected, name


def test_the_app_waits_for_a_healthy_database_and_redis_and_one_migration() -> None:
    every = services()
    assert every["migrate"]["command"] == ["erp-gateway", "migrate"]
    assert every["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        needs = every[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy", name
        assert needs["redis"]["condition"] == "service_healthy", name
        assert needs["migrate"]["condition"] == "service_completed_successfully", name


@pytest.mark.parametrize("name", ["api", "worker"])
def test_the_healthchecks_are_commands_the_image_has(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    check = services()[name]["healthcheck"]
    kind, program, *args = check["test"]
    assert kind == "CMD" and program == "erp-gateway"  # no curl: the image has none
    with pytest.raises(SystemExit):  # the subcommand and its options parse
        main([*args, "--help"])
    assert "healthcheck" in capsys.readouterr().out
    assert 'CMD ["erp-gateway", "healthcheck"]' in (ROOT / "Dockerfile").read_text()


def test_prometheus_is_optional_with_the_alert_rules() -> None:
    prometheus = services()["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in prometheus["volumes"]
