"""The gateway as the benchmark runs it: its config (a Shopify shop routed to the NetSuite
simulator), its environment, and its processes (serve, worker, the simulator as the sink)."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.orders import SECRET, SHOP_DOMAIN, SKUS
from bench.servers import LOGS, ROOT, Servers, wait_ready

NS = {
    "account_id": "1234567",
    "consumer_key": "ck",
    "consumer_secret": "cs",
    "token_id": "tk",
    "token_secret": "ts",
}
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/1")


def config_yaml(netsuite_url: str) -> str:
    creds = ", ".join(f"{k}: {v}" for k, v in NS.items())
    return f"""
connections:
  - {{id: shop, type: shopify, base_url: "https://{SHOP_DOMAIN}",
     credentials: {{webhook_secret: {SECRET}, access_token: x}}}}
  - id: erp
    type: netsuite
    base_url: {netsuite_url}
    credentials: {{{creds}}}
    options: {{discount_item_id: "900"}}
    delivery: {{max_concurrency: 16, request_timeout_seconds: 10}}
routes:
  - {{flow: orders, from: shop, to: erp}}
mappings:
  sku: {{erp: {{{SKUS[0]}: "1042", {SKUS[1]}: "959"}}}}
"""


def gateway_env(pg_dsn: str, redis_url: str, netsuite_url: str) -> dict[str, str]:
    config = LOGS / "bench-config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(config_yaml(netsuite_url))
    return {
        "GATEWAY_DATABASE_URL": pg_dsn.replace("postgresql://", "postgresql+asyncpg://"),
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_LOG_FORMAT": "json",
        "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_WORKER_CONCURRENCY": "32",
    }


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "app.cli", "migrate"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def start_sink(servers: Servers, port: int) -> subprocess.Popen[bytes]:
    """The NetSuite simulator: the ERP each order is delivered to."""
    flags = [arg for k, v in NS.items() for arg in (f"--{k.replace('_', '-')}", v)]
    proc = servers.python(
        "netsuite",
        [
            "-m",
            "simulators.netsuite.simulator",
            "--port",
            str(port),
            "--concurrency-limit",
            "64",
            "--items",
            "1042,959,900",
            *flags,
        ],
    )
    wait_ready(f"http://127.0.0.1:{port}/_sim/stats")
    return proc


def start_api(
    servers: Servers, port: int, env: dict[str, str], name: str = "api", workers: int = 1
) -> subprocess.Popen[bytes]:
    args = ["-m", "app.cli", "serve", "--port", str(port), "--workers", str(workers)]
    proc = servers.python(name, args, env)
    wait_ready(f"http://127.0.0.1:{port}/readyz")
    return proc


def start_worker(
    servers: Servers, env: dict[str, str], name: str = "worker"
) -> subprocess.Popen[bytes]:
    return servers.python(name, ["-m", "app.cli", "worker"], env)


def start_floor(servers: Servers, port: int, dsn: str) -> subprocess.Popen[bytes]:
    """The floor: bare FastAPI + one asyncpg INSERT per request (bench/baseline_app.py)."""
    proc = servers.python("floor", ["-m", "bench.baseline_app", "--port", str(port), "--dsn", dsn])
    wait_ready(f"http://127.0.0.1:{port}/docs")
    return proc
