"""Shared plumbing of the Debian servers the tests start themselves (PgBouncer, a TLS PostgreSQL).

Both refuse to run as root, so when the tests run as root (CI) they run as an unprivileged
system user; as anyone else they run as that user. ``make system-deps`` installs the packages.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

INSTALL_HINT = "run `make system-deps` (apt-get install pgbouncer postgresql)"


class SystemServerMissing(RuntimeError):
    """A Debian package the tests need is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_binary(name: str, *candidates: str) -> str:
    for candidate in (*candidates, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemServerMissing(f"{name} is not installed: {INSTALL_HINT}")


def postgres_bin_dir() -> Path:
    """Debian's newest ``/usr/lib/postgresql/<major>/bin`` (initdb, postgres)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise SystemServerMissing(f"Debian's PostgreSQL is not installed: {INSTALL_HINT}")
    return found[-1].parent


class RunAs:
    """Who a server process runs as: ``user`` when we are root, else ourselves."""

    def __init__(self, user: str | None) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(user or "nobody")
            self.uid, self.gid, self.name = entry.pw_uid, entry.pw_gid, entry.pw_name
        else:
            self.uid, self.gid, self.name = os.geteuid(), os.getegid(), pwd.getpwuid(os.geteuid()).pw_name

    def own(self, *paths: Path) -> None:
        """Hand ``paths`` over to the server's user (a no-op when that is us)."""
        if os.geteuid() == 0:
            for path in paths:
                os.chown(path, self.uid, self.gid)

    def popen_options(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def run(self, args: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, check=True, capture_output=True, text=True, **self.popen_options(), **options)


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{what} did not start within {timeout_s} s{tail}")


def accepts_tcp(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False
