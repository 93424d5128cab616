"""The processes a benchmark starts: Python servers from this tree, and nginx as the null
endpoint. All of them log to var/bench/ and are stopped when the run ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.tools import tool_path

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "var" / "bench"


class Servers:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        LOGS.mkdir(parents=True, exist_ok=True)
        log = (LOGS / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def python(
        self, name: str, args: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        return self.start(name, [sys.executable, *args], env)

    def nginx(self, port: int) -> subprocess.Popen[bytes]:
        """nginx answering 202 to every request with no work: the generator's ceiling."""
        prefix = LOGS / "nginx"
        prefix.mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(port=port, prefix=prefix))
        return self.start(
            "nginx", [tool_path("nginx"), "-p", str(prefix), "-c", str(conf), "-e", "stderr"]
        )

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path {prefix}/body;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 202 '{{"accepted":true}}'; }}
    }}
}}
"""


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"not ready: {url} (logs in {LOGS})")
