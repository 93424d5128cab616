"""Run wrk with bench/wrk.lua and read what it measured, its own CPU time included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench.tools import tool_path

LUA = Path(__file__).with_name("wrk.lua")


@dataclass
class WrkResult:
    seconds: float
    sent: int
    responses: int
    statuses: dict[int, int]
    errors: dict[str, int]
    late: int  # open loop: requests sent more than 50 ms after their due time
    repeats: int  # requests beyond the pool (the same webhook sent again)
    latency_ms: dict[str, float]
    cpu_seconds: float  # wrk's own user + system time
    rate_offered: float = 0.0  # 0: closed loop
    raw: str = field(default="", repr=False)

    def count(self, *codes: int) -> int:
        return sum(self.statuses.get(code, 0) for code in codes)

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def failed(self) -> int:
        return self.responses - self.ok + sum(self.errors.values())

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def throughput(self) -> float:
        """Answers of any status per second: the load the generator carried."""
        return self.responses / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds * 1e6 / max(self.responses, 1)


def run_wrk(
    url: str,
    pool: Path,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    rate: float = 0.0,
    tail: float = 30.0,
) -> WrkResult:
    """Closed loop (``rate`` 0) for ``seconds``, or open loop: ``rate * seconds`` requests
    on schedule, then up to ``tail`` seconds for their answers (wrk stops once all came)."""
    total = round(rate * seconds)
    duration = seconds + tail if rate else seconds
    command = [
        tool_path("wrk"),
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{duration:g}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA),
        url,
        "--",
        str(pool),
        str(threads),
        f"{rate:g}",
        str(total),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines, answered = [], 0
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("BENCH_ANSWERED"):
            answered += 1
            if answered == threads:  # every request answered: end the -d wait (SIGINT)
                proc.send_signal(signal.SIGINT)
    output = "".join(lines)
    # wait4 gives this child's own CPU time, untouched by the other children's
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    found = [ln for ln in output.splitlines() if ln.startswith("BENCH_JSON ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"wrk failed ({' '.join(command)}):\n{output}")
    data = json.loads(found[0].removeprefix("BENCH_JSON "))
    return WrkResult(
        seconds=data["duration_us"] / 1e6,
        sent=data["sent"],
        responses=data["responses"],
        statuses={int(code): n for code, n in data["statuses"].items()},
        errors=data["errors"],
        late=data["late"],
        repeats=data["repeats"],
        latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        rate_offered=rate,
        raw=output,
    )
