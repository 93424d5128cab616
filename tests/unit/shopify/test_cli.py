"""The simulator's command line: send signed webhooks at a rate; serve the Admin API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.shopify.inbound import dedupe_key, verify_hmac
from connectors.shopify.webhooks import parse_webhook
from kernel.errors import SignatureError
from simulators.shopify.shop import ShopifySimulator
from simulators.shopify.simulator import _parser, main
from tests.support.processes import ROOT, free_port, process_group, wait_http
from tests.unit.shopify.conftest import SECRET, SOURCE

URL = "http://gateway.test/webhooks/shop-eu"


def test_send_reports_accepted_duplicate_and_error(
    httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    skus: list[list[str | None]] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        try:
            verify_hmac(request.content, request.headers.get("x-shopify-hmac-sha256"), SECRET)
        except SignatureError:
            return httpx.Response(401)
        (event,) = parse_webhook(request.headers, request.content, SOURCE).events
        skus.append([line.sku for line in event.payload.lines])
        n = len(seen)
        seen.append(dedupe_key(request.headers, request.content))
        if n == 3:
            return httpx.Response(200, json={"event_ids": [1], "duplicate": True})
        if n == 4:
            return httpx.Response(503, json={"detail": "down"})
        return httpx.Response(202, json={"event_ids": [n], "duplicate": False})

    httpx_mock.add_callback(gateway, url=URL, is_reusable=True)
    argv = ["send", "--url", URL, "--secret", SECRET, "--count", "5", "--rate", "1000"]
    code = main([*argv, "--sku", "TSHIRT-RED-M", "--sku", "MUG-BLACK"])
    out = capsys.readouterr().out
    assert "sent 5: accepted 3, duplicate 1, error 1 (200: 1, 202: 3, 503: 1)" in out
    assert code == 1  # any error makes the exit status say so
    assert len(set(seen)) == 5  # five distinct deliveries
    assert skus == [["TSHIRT-RED-M", "MUG-BLACK"]] * 5


def test_send_with_everything_accepted_exits_zero(
    httpx_mock: HTTPXMock, capsys: pytest.CaptureFixture[str]
) -> None:
    httpx_mock.add_response(url=URL, status_code=202, json={"duplicate": False}, is_reusable=True)
    assert main(["send", "--url", URL, "--secret", SECRET, "--count", "3", "--rate", "500"]) == 0
    assert "accepted 3, duplicate 0, error 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send", "--url", URL], "send needs --secret"),
        (["send", "--url", URL, "--secret", "s", "--rate", "0"], "must be a positive number"),
        (["send", "--url", URL, "--secret", "s", "--count", "0"], "must be 1 or more"),
    ],
)
def test_send_refuses_bad_arguments(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHOPIFY_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_send_as_a_process_counts_connection_errors() -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/shop"  # nothing listens there
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulators.shopify.simulator",
            "send",
            "--url",
            url,
            "--secret",
            SECRET,
            "--count",
            "2",
            "--rate",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr
    assert "accepted 0, duplicate 0, error 2 (ConnectError: 2)" in done.stdout


def test_serve_runs_as_its_own_process(tmp_path: Path) -> None:
    port = free_port()
    with process_group(tmp_path) as group:
        proc = group.python(
            "shopify-sim",
            [
                "-m",
                "simulators.shopify.simulator",
                "serve",
                "--port",
                str(port),
                "--access-token",
                "shpat_cli",
                "--orders",
                "3",
            ],
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/_sim/stats", proc)
        url = f"{base}/admin/api/2025-01/orders.json"
        response = httpx.get(url, headers={"X-Shopify-Access-Token": "shpat_cli"})
        assert response.status_code == 200
        assert [o["name"] for o in response.json()["orders"]] == ["#1001", "#1002", "#1003"]
        assert response.headers["x-shopify-shop-api-call-limit"] == "1/40"
        assert httpx.get(url).status_code == 401


def test_the_graphql_restore_rate_is_set_and_kept_across_a_reset() -> None:
    sim = ShopifySimulator(graphql_restore_rate=1000.0)
    assert sim.store.graphql_restore_rate == 1000.0
    sim.reset()
    assert sim.store.graphql_restore_rate == 1000.0
    assert ShopifySimulator().store.graphql_restore_rate == 100.0  # the standard plan's
    args = _parser().parse_args(["serve", "--graphql-restore-rate", "5000"])
    assert args.graphql_restore_rate == 5000.0
