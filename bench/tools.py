"""The external programs the benchmark drives, installed with apt when they are missing."""

from __future__ import annotations

import os
import shutil
import subprocess

# command → the Debian package that has it
PACKAGES = {
    "wrk": "wrk",  # HTTP load, C with LuaJIT: well under 1 ms of CPU per request
    "nginx": "nginx-light",  # the null endpoint that measures the generator's own ceiling
}


def require_tools() -> None:
    """Install the missing tools with apt-get (as root), or stop with one line saying how."""
    missing = [cmd for cmd in PACKAGES if _which(cmd) is None]
    if not missing:
        return
    packages = " ".join(PACKAGES[cmd] for cmd in missing)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"make bench needs {', '.join(missing)}: install {packages} and retry")
    print(f"installing {packages} (apt-get)", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages.split()],
        check=True,
        env=env,
    )


def tool_path(cmd: str) -> str:
    path = _which(cmd)
    if path is None:
        raise SystemExit(f"{cmd} not found: install {PACKAGES[cmd]}")
    return path


def _which(cmd: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-login PATH may leave out
    return shutil.which(cmd) or shutil.which(cmd, path="/usr/sbin:/sbin")


def tool_version(cmd: str) -> str:
    """The tool and its package's version, for the report."""
    package = PACKAGES[cmd]
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True
    )
    return f"{cmd} {done.stdout.strip()} ({package})" if done.returncode == 0 else cmd
