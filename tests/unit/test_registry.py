"""Connector discovery: a connector shipped as its own package is found through the
``erp_gateway.connectors`` entry-point group, like the built-in ones; a broken one is one
clear line at start-up."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import registry

ROOT = Path(__file__).resolve().parents[2]

CONNECTOR = """
from kernel.contract import Connector


class AcmeConnector(Connector):
    type_name = "acme"
    side = "erp"
    outbound_flows = frozenset({"orders"})
"""


def install(site: Path, name: str, entry: str, module: str | None = CONNECTOR) -> None:
    """A package as pip would leave it: its module and a dist-info with entry_points.txt."""
    if module is not None:
        (site / "acme_connector.py").write_text(module)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[erp_gateway.connectors]\n{entry}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.connector_types.cache_clear()
    yield tmp_path
    registry.connector_types.cache_clear()
    sys.modules.pop("acme_connector", None)


def test_a_connector_installed_as_its_own_package_is_found(site: Path) -> None:
    install(site, "acme_connector", "acme = acme_connector:AcmeConnector")
    types = registry.connector_types()
    assert types["acme"].__name__ == "AcmeConnector"
    assert {"shopify", "netsuite", "custom", "tryton"} <= set(types)  # registered the same way


@pytest.mark.parametrize(
    ("entry", "module", "message"),
    [
        ("acme = acme_connector:Missing", CONNECTOR, "connector 'acme' (acme_connector:Missing)"),
        ("acme = acme_connector:AcmeConnector", "import nowhere_to_be_found\n", "cannot be loaded"),
        ("acme = acme_connector:VALUE", "VALUE = 3\n", "is not a Connector"),
        ("acmex = acme_connector:AcmeConnector", CONNECTOR, "whose type_name is 'acme'"),
    ],
)
def test_a_broken_connector_package_is_named_in_the_error(
    site: Path, entry: str, module: str, message: str
) -> None:
    install(site, "acme_connector", entry, module)
    with pytest.raises(registry.RegistryError) as error:
        registry.connector_types()
    assert message in str(error.value)


def test_check_config_accepts_the_installed_type_and_names_a_broken_one(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install(site, "acme_connector", "acme = acme_connector:AcmeConnector")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            connections:
              - {id: erp, type: acme, base_url: "https://acme.example"}
            """
        )
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "GATEWAY_CONFIG": str(config)}

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "check-config"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    result = check()
    assert result.returncode == 0, result.stderr
    assert "connection erp: acme" in result.stdout
    (site / "acme_connector.py").write_text("raise RuntimeError('half installed')\n")
    result = check()
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert "connector 'acme'" in line and "half installed" in line, line
