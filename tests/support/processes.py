"""Real processes on loopback for end-to-end tests: start, wait until ready, kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def kill9(self) -> None:
        """SIGKILL the whole process group: no cleanup, like a crashed host."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self) -> None:
        """Ask the process group to stop (SIGTERM) without waiting."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, timeout: float = 3.0) -> None:
        self.terminate()
        if self.popen.poll() is None:
            try:
                self.popen.wait(timeout)  # graceful shutdown may wait on a stalled call
            except subprocess.TimeoutExpired:
                self.kill9()
        self._log.close()


def wait_http(url: str, proc: Proc, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.log_tail()}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} not ready at {url} after {timeout}s:\n{proc.log_tail()}")


def wait_log(proc: Proc, needle: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log_path.read_text(errors="replace"):
            return
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited early:\n{proc.log_tail()}")
        time.sleep(0.1)
    raise AssertionError(f"{proc.name} never logged {needle!r}:\n{proc.log_tail()}")


class ProcessGroup:
    """Processes of one test; all stopped at the end, logs shown on failure."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        restarts = sum(1 for p in self.procs if p.name.split("#")[0] == name)
        proc = Proc(f"{name}#{restarts + 1}" if restarts else name, args, env or {}, self.log_dir)
        self.procs.append(proc)
        return proc

    def python(self, name: str, module_args: list[str], env: dict[str, str] | None = None) -> Proc:
        return self.start(name, [sys.executable, *module_args], env)

    def stop_all(self) -> None:
        """SIGTERM every process at once, then wait for each (3 s in all, then SIGKILL)."""
        for proc in reversed(self.procs):
            proc.terminate()
        deadline = time.monotonic() + 3.0
        for proc in reversed(self.procs):
            proc.stop(timeout=max(0.1, deadline - time.monotonic()))


@contextmanager
def process_group(log_dir: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(log_dir)
    try:
        yield group
    finally:
        group.stop_all()


def poll(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05, message: str
) -> Any:
    """Call ``predicate`` until it returns something truthy; fail naming ``message`` at the
    deadline (with the last value seen). For tests that drive other processes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
