"""End-to-end stacks of real processes on loopback.

``embedded``: one ``erp-gateway serve`` on SQLite with the in-process worker.
``postgres-redis``: ``erp-gateway serve`` + ``erp-gateway worker`` (arq) on Postgres and Redis.
Both face a NetSuite simulator process; tests drive Shopify webhooks at the gateway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import (
    NS_CREDS,
    REDIS_URL,
    SHOP_SECRET,
    gateway_config_yaml,
    require_services,
)
from tests.support.processes import (
    Proc,
    ProcessGroup,
    free_port,
    process_group,
    wait_http,
    wait_log,
)

OPERATOR = {"Authorization": "Bearer operator-key"}
STACKS = ["embedded", "postgres-redis"]


@dataclass
class Stack:
    kind: str
    group: ProcessGroup
    env: dict[str, str]
    gateway_url: str
    netsuite_url: str
    gateway: Proc
    netsuite: Proc
    worker: Proc | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway_url, headers=OPERATOR, timeout=10)

    def sim(self) -> httpx.Client:
        return httpx.Client(base_url=self.netsuite_url, timeout=10)

    def start_worker(self) -> Proc:
        assert self.kind == "postgres-redis"
        self.worker = self.group.start(
            "worker", [sys.executable, "-m", "app.cli", "worker"], self.env
        )
        wait_log(self.worker, "worker started")
        return self.worker

    def start_gateway(self) -> Proc:
        port = self.gateway_url.rsplit(":", 1)[1]
        self.gateway = self.group.start(
            "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", port], self.env
        )
        wait_http(f"{self.gateway_url}/readyz", self.gateway)
        return self.gateway


def _database_for(kind: str, tmp_path: Path, clean_db: str) -> str:
    if kind == "embedded":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return clean_db


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Iterator[Stack]:
    kind: str = request.param
    if kind == "postgres-redis":
        require_services()
    clean_db = request.getfixturevalue("clean_db") if kind == "postgres-redis" else ""
    if kind == "postgres-redis":
        request.getfixturevalue("redis_url")
    db_url = _database_for(kind, tmp_path, clean_db)
    ns_port, gw_port = free_port(), free_port()
    netsuite_url = f"http://127.0.0.1:{ns_port}"
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(gateway_config_yaml(netsuite_url, request_timeout_seconds=1.5))
    env = {
        "GATEWAY_DATABASE_URL": db_url,
        "GATEWAY_REDIS_URL": REDIS_URL if kind == "postgres-redis" else "",
        "GATEWAY_CONFIG": str(config_path),
        "GATEWAY_API_KEYS": "viewer-key:viewer,operator-key:operator",
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LEASE_SECONDS": "3",
        "GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with process_group(tmp_path) as group:
        if kind == "embedded":
            from app.cli import migrate

            migrate(db_url)
        sim_args = [
            sys.executable,
            "-m",
            "simulators.netsuite.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(ns_port),
        ]
        for key, value in NS_CREDS.items():
            sim_args += [f"--{key.replace('_', '-')}", value]
        sim_args += ["--items", "1042,959,900"]
        # started together (each needs only the database, none the others), then awaited:
        # a process's start is mostly its imports, which the cores do side by side
        netsuite = group.start("netsuite", sim_args, {"PYTHONUNBUFFERED": "1"})
        gateway = group.start(
            "gateway", [sys.executable, "-m", "app.cli", "serve", "--port", str(gw_port)], env
        )
        worker = None
        if kind == "postgres-redis":
            worker = group.start("worker", [sys.executable, "-m", "app.cli", "worker"], env)
        wait_http(f"{netsuite_url}/_sim/stats", netsuite)
        wait_http(f"http://127.0.0.1:{gw_port}/readyz", gateway)
        if worker is not None:
            wait_log(worker, "worker started")
        s = Stack(
            kind, group, env, f"http://127.0.0.1:{gw_port}", netsuite_url, gateway, netsuite, worker
        )
        yield s
        if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
            for proc in group.procs:
                print(f"--- {proc.name} ---\n{proc.log_tail(60)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]


def shop_secret() -> str:
    return SHOP_SECRET


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
