"""`erp-gateway demo` runs the whole story and says where to look."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT, free_port

pytestmark = pytest.mark.e2e


def test_demo_sends_orders_and_prints_where_to_look(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--orders", "5", "--port", str(port), "--exit"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert re.search(r"webhooks accepted\s+5", out)
    assert re.search(r"duplicates recognised\s+1", out)
    # four orders went through; the one with an unmapped SKU waits for its mapping
    assert re.search(r"NetSuite sales orders\s+4", out)
    assert "'parked': 1" in out and "'delivered': 4" in out
    # NetSuite's stock reached the store, less the four orders' units; the 90% cut did not
    stock = re.search(r"stock in the store\s+(\{.*\})", out)
    assert stock and "None" not in stock.group(1), out
    assert re.search(r"held for approval\s+1: price changes from 19.99 to 1.99", out), out
    assert "'TSHIRT-RED-M': '19.99'" in out  # the store still shows the right price
    assert f"http://127.0.0.1:{port}/docs" in out
    assert (tmp_path / "var" / "gateway.log").exists()
