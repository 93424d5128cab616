"""The suite finds Postgres and Redis by itself, and says in one line what it skipped without
them (tests/support/services.py, the summary hook in tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import conftest
from tests.support import services
from tests.support.processes import ROOT, free_port

TOKENS = "tests/integration/test_token_store.py"  # two of its tests need Postgres


def test_an_unreachable_default_postgres_is_missing_with_the_reason_and_what_to_do() -> None:
    port = free_port()
    found = services.postgres({}, f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
    assert found.url is None
    assert found.skip_reason.startswith(f"PostgreSQL not reachable at 127.0.0.1:{port} (")
    assert found.skip_reason.endswith("); start it or set GATEWAY_TEST_DATABASE_URL")


def test_an_unreachable_default_redis_is_missing_with_the_reason_and_what_to_do() -> None:
    port = free_port()
    found = services.redis({}, f"redis://127.0.0.1:{port}/15")
    assert found.url is None
    assert found.skip_reason.startswith(f"Redis not reachable at 127.0.0.1:{port} (")
    assert found.skip_reason.endswith("); start it or set GATEWAY_TEST_REDIS_URL")


def test_a_variable_is_used_as_given_without_a_probe() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/elsewhere"
    assert services.postgres({"GATEWAY_TEST_DATABASE_URL": url}).url == url
    assert services.redis({"GATEWAY_TEST_REDIS_URL": "redis://127.0.0.1:1/3"}).url == (
        "redis://127.0.0.1:1/3"
    )


def test_each_xdist_worker_has_a_redis_db_of_its_own() -> None:
    """``make test`` runs the suite on every core: a worker flushing its Redis db before a
    test must not drop another worker's queued jobs."""
    given = "redis://127.0.0.1:6379/15"
    dbs = [services.for_xdist_worker(given, f"gw{n}") for n in range(4)]
    assert dbs == [f"redis://127.0.0.1:6379/{n}" for n in (15, 14, 13, 12)]
    assert services.for_xdist_worker("redis://h:1/2", "gw3") == "redis://h:1/15"  # wraps
    assert services.for_xdist_worker(given, None) == given  # not under xdist
    env = {"GATEWAY_TEST_REDIS_URL": "redis://127.0.0.1:1/3", "PYTEST_XDIST_WORKER": "gw1"}
    assert services.redis(env).url == "redis://127.0.0.1:1/2"


def test_the_summary_counts_only_the_tests_skipped_for_a_missing_service() -> None:
    missing = services.Service("PostgreSQL", "GATEWAY_TEST_DATABASE_URL", "pg://h:1/x", None, "no")
    present = services.Service(
        "Redis", "GATEWAY_TEST_REDIS_URL", "redis://h:2/15", "redis://h:2/15"
    )
    reasons = [f"Skipped: {missing.skip_reason}"] * 3 + ["Skipped: promtool is missing"]
    assert services.skipped_summary(reasons, [missing, present]) == (
        f"skipped 3 tests: {missing.skip_reason}"
    )
    assert services.skipped_summary(["Skipped: node is missing"], [missing, present]) is None


def test_a_run_without_postgres_ends_with_one_line_naming_it() -> None:
    """A fresh pytest process whose default Postgres is a port where nothing listens."""
    port = free_port()
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    run = (
        "import sys, pytest, tests.support.services as s; "
        f"s.DEFAULT_DATABASE_URL = {dead!r}; "
        "sys.exit(pytest.main(sys.argv[1:]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "CI"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            run,
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "lock_is_a or hangs",
            TOKENS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    summary = [line for line in lines if line.startswith("skipped 2 tests: ")]
    assert len(summary) == 1, result.stdout
    assert f"PostgreSQL not reachable at 127.0.0.1:{port} (" in summary[0]
    assert summary[0].endswith("start it or set GATEWAY_TEST_DATABASE_URL")
    assert lines[-1].startswith("2 skipped")  # pytest's own closing line stays last


def test_under_ci_a_missing_service_fails_the_test_instead_of_skipping_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = services.Service("Redis", "GATEWAY_TEST_REDIS_URL", "redis://h:1/15", None, "no")
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="Redis not reachable at h:1"):
        conftest._need(missing)
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI must provide it: Redis not reachable"):
        conftest._need(missing)
