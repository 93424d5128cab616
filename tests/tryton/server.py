"""A real Tryton server for the tests: database built once, cached, served on a free port.

Building a database (``trytond-admin`` activating sale, stock, account_invoice,
sale_shipment_cost, stock_package_shipping and their dependencies, then ``seed_db.py``) takes
about half a minute; the finished SQLite file is cached as
``~/.cache/erp-gateway/tryton/<hash>.sqlite`` (under ``$XDG_CACHE_HOME`` when set;
``$ERP_GATEWAY_TRYTON_CACHE`` names another directory), the hash covering the installed
trytond distributions, the seed script and its data, so only the first run on a machine (or
after an upgrade) pays, not every fresh clone of the repository.
Each test session serves a fresh copy of it with ``trytond -c <conf> -d <db>``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(
    os.environ.get("ERP_GATEWAY_TRYTON_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "erp-gateway" / "tryton"
)
SEED_SCRIPT = Path(__file__).with_name("seed_db.py")
DATABASE = "gateway"
MODULES = ("sale", "sale_shipment_cost", "account_invoice", "stock_package_shipping")
ADMIN_PASSWORD = "admin-Secret-9"
USERNAME, PASSWORD = "gateway", "gw-Secret-pass-1"
SHIPPING_SKU = "SHIPPING"
DISCOUNT_SKU = "DISCOUNT"
CARRIER = "Express Parcels"
# goods the tests sell and move; each test module keeps to its own SKUs
PRODUCTS = {
    "TSHIRT-RED-M": ("T-shirt red M", "19.99"),
    "MUG-BLUE": ("Blue mug", "7.125"),
    "SKU-RED-M": ("Red shirt", "19.99"),
    "SKU-BLUE-L": ("Blue shirt", "24.00"),
    "INV-A": ("Stock test A", "5.00"),
    "INV-B": ("Stock test B", "6.00"),
    "SHIP-A": ("Parcel test A", "12.50"),
    "SHIP-B": ("Parcel test B", "3.25"),
    "TAXED-10": ("Taxed at 10%", "20.00"),
}
TAXED = {"TAXED-10"}
SEED = {
    "users": [{"login": USERNAME, "password": PASSWORD}],
    "products": [
        {"sku": sku, "name": name, "price": price, "taxed": sku in TAXED}
        for sku, (name, price) in PRODUCTS.items()
    ],
    "tax_rate": "0.10",
    "services": [{"sku": DISCOUNT_SKU, "name": "Discount"}],
    "shipping_sku": SHIPPING_SKU,
    "carrier": CARRIER,
    "stock": {sku: "100" for sku in PRODUCTS},
}


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed (make env installs the tryton group)")
    return found


def cache_key() -> str:
    digest = hashlib.sha256()
    versions = sorted(
        f"{d.metadata['Name'].lower()}=={d.version}"
        for d in importlib.metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower().startswith("trytond")
    )
    digest.update("\n".join(versions).encode())
    digest.update(SEED_SCRIPT.read_bytes())
    digest.update(json.dumps(SEED, sort_keys=True).encode())
    digest.update(" ".join(MODULES).encode())
    # the seeded fiscal year spans the years around the one it was built in
    digest.update(str(time.gmtime().tm_year).encode())
    return digest.hexdigest()[:20]


def write_config(directory: Path, port: int) -> Path:
    conf = directory / "trytond.conf"
    conf.write_text(
        "[database]\n"
        "uri = sqlite://\n"
        f"path = {directory}\n"
        "[web]\n"
        f"listen = 127.0.0.1:{port}\n"
        "[session]\n"
        "max_attempt = 1000\n"
        "max_attempt_ip_network = 10000\n"
    )
    return conf


def _run(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{tail}")


def build_database(directory: Path) -> Path:
    """Activate the modules and seed a new database in ``directory``; its file."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = write_config(directory, free_port())
    db_file = directory / f"{DATABASE}.sqlite"
    db_file.write_bytes(b"")
    passfile = directory / "admin-password"
    passfile.write_text(ADMIN_PASSWORD + "\n")
    spec = directory / "seed.json"
    spec.write_text(json.dumps(SEED))
    env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
    log = directory / "build.log"
    _run(
        [
            _bin("trytond-admin"),
            "-c",
            str(conf),
            "-d",
            DATABASE,
            "-u",
            *MODULES,
            "--activate-dependencies",
            "--email",
            "admin@example.com",
        ],
        env,
        log,
    )
    _run([sys.executable, str(SEED_SCRIPT), str(conf), DATABASE, str(spec)], env, log)
    return db_file


def cached_database() -> Path:
    """The seeded database file, built on the first call on this machine."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = CACHE_DIR / f"{cache_key()}.sqlite"
    with (CACHE_DIR / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it right now
        if not target.exists():
            work = CACHE_DIR / f"build-{os.getpid()}"
            shutil.rmtree(work, ignore_errors=True)
            built = build_database(work)
            os.replace(built, target)
            shutil.rmtree(work, ignore_errors=True)
            for old in CACHE_DIR.glob("*.sqlite"):  # built for other versions: never used again
                if old != target:
                    old.unlink(missing_ok=True)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TrytonServer:
    url: str  # base_url of a connection: JSON-RPC is at <url>/<database>/rpc/
    database: str
    username: str
    password: str
    directory: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.directory / "trytond.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_until_serving(server: TrytonServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    body = {"id": 0, "method": "common.server.version", "params": []}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"trytond exited ({server.process.returncode}):\n{server.log()[-3000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.post(f"{server.url}/rpc/", json=body, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"trytond did not answer within {timeout}s:\n{server.log()[-3000:]}")


@contextlib.contextmanager
def running_server(directory: Path) -> Iterator[TrytonServer]:
    """A trytond serving a fresh copy of the cached database; stopped on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached_database(), directory / f"{DATABASE}.sqlite")
    port = free_port()
    conf = write_config(directory, port)
    log = (directory / "trytond.log").open("wb")
    process = subprocess.Popen(
        [_bin("trytond"), "-c", str(conf), "-d", DATABASE],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = TrytonServer(
        f"http://127.0.0.1:{port}", DATABASE, USERNAME, PASSWORD, directory, process
    )
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
