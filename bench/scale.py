"""The scale benchmarks (issue 12, target 5), written to docs/benchmarks-scale.md: a 50,000-SKU
stock reconciliation against the simulators, the API's and worker's memory over 100,000
orders, and the hot queries timed with 10 million rows in the big tables. They take long
(the memory pass ~30 min, the big tables ~18 min), so they run apart from ``make bench``:

    make bench-scale
    python -m bench.scale --orders 20000 --rows 1000000   # shorter
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench.big_tables import render_big_tables, run_big_tables
from bench.memory import measure_memory, render_memory
from bench.reconciliation import render_reconciliation, run_reconciliation
from bench.servers import ROOT
from bench.tools import require_tools

OUTPUT = ROOT / "docs" / "benchmarks-scale.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skus", type=int, default=50_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=60, help="memory pass, offered orders/s")
    parser.add_argument("--rows", type=int, default=10_000_000, help="big tables, rows each")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    require_tools()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sections = [render_reconciliation(run_reconciliation(args.skus))]
    sections.append(render_memory(measure_memory(args.orders, args.rate)))
    sections.append(render_big_tables(run_big_tables(args.rows)))
    header = (
        "# Scale benchmarks\n\n"
        "Written by `make bench-scale` (`python -m bench.scale --help`); the throughput and "
        "latency benchmarks are in [benchmarks.md](benchmarks.md). Everything runs on this one "
        "machine: the gateway, its Postgres and Redis, and the simulators.\n\n"
        f"Last run: {started} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}.\n"
    )
    args.output.write_text(header + "\n" + "\n".join(sections))
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
