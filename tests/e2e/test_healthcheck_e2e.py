"""The worker's container healthcheck against a real worker process (Postgres + Redis)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_services
from tests.support.processes import ROOT, poll, process_group, wait_log

pytestmark = pytest.mark.e2e


def healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "healthcheck", "--worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_worker_healthcheck_follows_a_real_worker(
    tmp_path: Path, clean_db: str, redis_url: str | None
) -> None:
    require_services()
    assert redis_url
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_DATABASE_URL": clean_db,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_LOG_FORMAT": "json",
    }
    assert healthcheck(env).returncode == 1  # nothing runs yet
    with process_group(tmp_path) as group:
        worker = group.start("worker", [sys.executable, "-m", "app.cli", "worker"], env)
        wait_log(worker, "worker started")
        ok = poll(
            lambda: (r := healthcheck(env)).returncode == 0 and r,
            timeout=30,
            interval=0.5,
            message="a healthy worker",
        )
        (line,) = ok.stdout.splitlines()
        assert line.startswith("ok: worker ") and "consuming" in line
        worker.stop(timeout=30)  # SIGTERM: it finishes, removes its heartbeat and exits
    failed = healthcheck(env)
    assert failed.returncode == 1
    (line,) = failed.stdout.splitlines()
    assert line.startswith("unhealthy: no worker on ")
