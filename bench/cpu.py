"""CPU time by process from /proc: our servers (with their child processes), the Postgres
backends serving the benchmark's databases, the Redis server, and the machine as a whole
(what else ran on it while the benchmark did)."""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """User + system seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return parents


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers, nginx's)."""
    parents = _parents()
    found, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        found.extend(frontier)
    return found


def postgres_backends(databases: set[str]) -> list[int]:
    """Backends serving ``databases``: their process title is 'postgres: [cluster:] user db
    host(port) state' (Debian puts the cluster, e.g. '15/main:', first)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        words = title.split()
        if words[:1] == ["postgres:"] and databases.intersection(words[1:4]):
            pids.append(int(entry.name))
    return pids


def redis_cpu(client: redis.Redis) -> float:
    info: dict[str, Any] = client.info("cpu")  # type: ignore[assignment]
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@dataclass
class Snapshot:
    at: float
    by_name: dict[str, dict[int, float]]  # name → pid → CPU seconds so far
    redis: float


@dataclass
class CpuMeter:
    """Snapshots of named process trees, the Postgres backends of the benchmark's databases
    and the Redis server; a delta between two is CPU seconds per name."""

    pids: dict[str, int]
    databases: set[str]
    redis_client: redis.Redis
    redis_idle_rate: float = 0.0  # the shared server's CPU/s before the run (others' load)

    def snapshot(self) -> Snapshot:
        by_name = {name: {p: process_cpu(p) for p in tree(pid)} for name, pid in self.pids.items()}
        by_name["Postgres"] = {p: process_cpu(p) for p in postgres_backends(self.databases)}
        return Snapshot(time.monotonic(), by_name, redis_cpu(self.redis_client))

    def delta(self, before: Snapshot, after: Snapshot) -> dict[str, float]:
        """CPU seconds between two snapshots; a process that started in between counts whole."""
        seconds = {
            name: sum(cpu - before.by_name.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for name, pids in after.by_name.items()
        }
        others = self.redis_idle_rate * (after.at - before.at)
        seconds["Redis"] = max(0.0, after.redis - before.redis - others)
        return seconds


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def own_cpu() -> float:
    """This process and its waited-for children (every server once stopped, wrk)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class MachineLoad:
    """What the machine did during the run: load averages, and the CPU that processes other
    than the benchmark's used (other users of the machine, of its Postgres and Redis)."""

    databases: set[str]
    redis_client: redis.Redis
    load_before: float = 0.0
    load_samples: list[float] = field(default_factory=list)
    redis_idle_rate: float = 0.0
    other_cores: float = 0.0
    busy_cores: float = 0.0
    seconds: float = 0.0
    _backend_cpu: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def start(self) -> None:
        self.load_before = os.getloadavg()[0]
        idle_start, redis_start = time.monotonic(), redis_cpu(self.redis_client)
        time.sleep(2)  # the shared Redis server's own background before we use it
        elapsed = time.monotonic() - idle_start
        self.redis_idle_rate = (redis_cpu(self.redis_client) - redis_start) / elapsed
        self._start = (time.monotonic(), machine_busy(), own_cpu(), redis_cpu(self.redis_client))
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.load_samples.append(os.getloadavg()[0])
            for pid in postgres_backends(self.databases):
                self._backend_cpu[pid] = process_cpu(pid)

    def stop(self) -> None:
        """Call once every server is stopped (their CPU is then in our children's)."""
        self._stop.set()
        if self._thread:
            self._thread.join()
        started, busy, own, redis_start = self._start
        self.seconds = time.monotonic() - started
        self.busy_cores = (machine_busy() - busy) / self.seconds
        redis_ours = (
            redis_cpu(self.redis_client) - redis_start - self.redis_idle_rate * self.seconds
        )
        ours = own_cpu() - own + sum(self._backend_cpu.values()) + max(0.0, redis_ours)
        self.other_cores = max(0.0, self.busy_cores - ours / self.seconds)

    @property
    def load_max(self) -> float:
        return max(self.load_samples, default=self.load_before)
