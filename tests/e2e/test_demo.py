"""`erp-gateway demo` runs the whole story and says where to look."""

from __future__ import annotations

import ast
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulators.demo import ITEMS, STOCK, UNMAPPED_ITEM, UNMAPPED_SKU, _basket, _port_taken
from tests.support.processes import ROOT

pytestmark = pytest.mark.e2e


def test_demo_sends_orders_and_prints_where_to_look(tmp_path: Path) -> None:
    # the demo binds PORT+101 and PORT+102 too: an ephemeral port's neighbours may be taken
    port = _base_port_with_free_neighbours()
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
    # NetSuite's stock reached the store, less what the five orders took, never below 0;
    # the 90% cut did not
    stock = re.search(r"stock in the store\s+(\{.*?\})", out)
    assert stock, out
    taken = {
        sku: sum(li["quantity"] for n in range(1, 6) for li in _basket(n, 5) if li["sku"] == sku)
        for sku in STOCK
    }
    # never more than NetSuite can sell less the baskets, never below 0: an order NetSuite
    # booked after the level it last sent counts as sold until its next level (or the
    # reconciliation), so the last basket's units may still be held back
    shown = ast.literal_eval(stock.group(1))
    assert set(shown) == set(STOCK), shown
    for sku in STOCK:
        assert STOCK[sku] - 2 * taken[sku] <= shown[sku] <= STOCK[sku] - taken[sku], (sku, shown)
        assert shown[sku] >= 0, shown
    assert all(STOCK[sku] > taken[sku] for sku in STOCK)
    assert re.search(r"held for approval\s+1: base price changes from 19.99 to 1.99", out), out
    assert "'TSHIRT-RED-M': '19.99'" in out  # the store still shows the right price
    assert f"http://127.0.0.1:{port}/docs" in out
    assert (tmp_path / "var" / "gateway.log").exists()


def _demo(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", "demo", "--port", str(port), *extra]


DEMO_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _base_port_with_free_neighbours() -> int:
    """A base port whose +101 and +102 are free too, below the kernel's ephemeral range:
    picked from it, they were now and then some test's client connection (Postgres, Redis)
    by the time the demo bound them."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10_000, max(low, 10_200) - 200)
        if not any(_port_taken(port + d) for d in (0, 101, 102)):  # as the demo checks
            return port
    raise AssertionError("no free port with free +101 and +102")


@pytest.mark.parametrize("taken_offset", [0, 102])
def test_demo_refuses_a_taken_port_in_one_line_and_starts_nothing(
    tmp_path: Path, taken_offset: int
) -> None:
    port = _base_port_with_free_neighbours()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + taken_offset))
        squatter.listen()
        started = time.monotonic()
        result = subprocess.run(
            _demo(port, "--orders", "2"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=DEMO_ENV,
        )
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 10, elapsed
    (line,) = result.stderr.splitlines()
    assert f"port {port + taken_offset}" in line and "already in use" in line, line
    assert "make run PORT=" in line
    assert "Traceback" not in result.stderr and result.stdout == ""
    # nothing was started: no simulator listens, no process wrote a log
    assert not any(_listening(port + d) for d in (0, 101, 102) if d != taken_offset)
    assert not (tmp_path / "var").exists()


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rpartition(")")[2].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _read_until(proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    """What the demo printed, up to ``needle`` (raw reads: no buffer hides a line from select)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and needle not in seen:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    if needle not in seen:
        raise AssertionError(f"the demo never printed {needle!r}; it printed:\n{seen}")
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_demo_takes_its_children_with_it(tmp_path: Path, sig: signal.Signals) -> None:
    port = _base_port_with_free_neighbours()
    demo = subprocess.Popen(
        _demo(port, "--orders", "2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        env=DEMO_ENV,
    )
    children: list[int] = []
    try:
        _read_until(demo, "2 shoppers check out", timeout=90)
        children = _children_of(demo.pid)
        assert len(children) == 3, children  # two simulators and the gateway
        assert all(_listening(port + d) for d in (0, 101, 102))
        demo.send_signal(sig)
        demo.wait(30)
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if _alive(pid)], "children outlived the demo"
        assert not any(_listening(port + d) for d in (0, 101, 102))
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        for pid in children:  # started by this test (through the demo): never leave them
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_mapping_the_demo_prints_releases_the_parked_order_as_the_product_it_names(
    tmp_path: Path,
) -> None:
    port = _base_port_with_free_neighbours()
    demo = subprocess.Popen(
        _demo(port, "--orders", "2"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        env=DEMO_ENV,
    )
    try:
        out = _read_until(demo, "press Ctrl-C to stop", timeout=90)
        # the operator runs the command the summary prints, as printed
        fix = re.search(r"release it by mapping\s+curl -X PUT (.*?) -d '(.*?)' (\S+)", out, re.S)
        assert fix, out
        key = re.search(r"Authorization: Bearer (\S+?)'", fix.group(1))
        assert key
        body, url = json.loads(fix.group(2)), fix.group(3)
        assert body == {"entries": {UNMAPPED_SKU: ITEMS[UNMAPPED_SKU]}}
        auth = {"Authorization": f"Bearer {key.group(1)}"}
        with httpx.Client(headers=auth, timeout=10) as api:
            assert api.put(url, json=body).status_code == 200
            parked = f"http://127.0.0.1:{port}/api/v1/deliveries"
            deadline = time.monotonic() + 30
            while api.get(parked, params={"status": "parked"}).json()["items"]:
                assert time.monotonic() < deadline, "the parked order was not released"
                time.sleep(0.2)
        netsuite = f"http://127.0.0.1:{port + 101}/_sim/records"
        items = httpx.get(f"{netsuite}/inventoryItem").json()["items"]
        assert {i["id"]: i.get("itemId") for i in items}[UNMAPPED_ITEM] == UNMAPPED_SKU
        orders = httpx.get(f"{netsuite}/salesOrder").json()["items"]
        assert len(orders) == 2  # the released order was booked, as the poster it is
        lines = orders[-1]["item"]["items"]
        assert [line["item"]["id"] for line in lines] == [UNMAPPED_ITEM], orders[-1]
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(30)
