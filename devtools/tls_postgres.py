"""Debian's PostgreSQL with TLS on, for the tests of ``sslmode``/``sslrootcert`` (DESIGN §11.2).

The embedded PostgreSQL from PyPI is built without SSL, so these tests start the distribution's
server: initdb and ``postgres`` as an unprivileged user in a temporary folder, listening on
127.0.0.1 only (no unix socket), ``ssl = on`` with a certificate for ``localhost`` issued by a
test CA (``trustme``), every connection and statement logged (to show what reached it).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from devtools.system_servers import RunAs, accepts_tcp, free_port, postgres_bin_dir, wait_until
from service.db import ConnectionParams

SERVER_NAME = "localhost"
# A role that may log in only over TLS with a password (the IAM tests give it the token they expect).
PASSWORD_ROLE = "tls_password_user"

HBA = f"""\
hostssl all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256
host    all {PASSWORD_ROLE} 127.0.0.1/32 reject
host    all all 127.0.0.1/32 trust
"""


@dataclass
class TlsPostgres:
    port: int
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes]

    def url(self, host: str = SERVER_NAME, user: str = "postgres", password: str | None = None, **query: str) -> str:
        secret = f":{quote(password, safe='')}" if password else ""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"postgresql://{quote(user, safe='')}{secret}@{host}:{self.port}/postgres{suffix}"

    def admin_connect(self) -> Any:
        """The tests' own plaintext superuser connection (what the server saw, pg_stat_ssl)."""
        return ConnectionParams(user="postgres", database="postgres", host="127.0.0.1", port=self.port).connect()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_tls_postgres(base_dir: Path, cert_pem: bytes, key_pem: bytes) -> TlsPostgres:
    """Start the server in ``base_dir`` (which the server's user must be able to traverse)."""
    bin_dir = postgres_bin_dir()
    owner = RunAs(_server_user())
    base_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(base_dir, 0o755)
    owner.own(base_dir)
    data_dir, log = base_dir / "data", base_dir / "postgres.log"
    owner.run(
        [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"], cwd=base_dir
    )
    (data_dir / "pg_hba.conf").write_text(HBA)
    for name, pem in (("server.crt", cert_pem), ("server.key", key_pem)):
        path = data_dir / name
        path.write_bytes(pem)
        os.chmod(path, 0o600)
        owner.own(path)
    log.touch()
    owner.own(log)
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",
        "ssl": "on",
        "ssl_cert_file": str(data_dir / "server.crt"),
        "ssl_key_file": str(data_dir / "server.key"),
        "log_connections": "on",
        "log_statement": "all",
        "max_connections": "40",
        "shared_buffers": "16MB",
        "fsync": "off",
    }
    args = [str(bin_dir / "postgres"), "-D", str(data_dir)]
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    with log.open("ab") as sink:
        process = subprocess.Popen(args, stdout=sink, stderr=sink, **owner.popen_options())
    server = TlsPostgres(port, data_dir, log, process)
    try:
        wait_until(lambda: accepts_tcp(port) or process.poll() is not None, 30.0, "PostgreSQL (TLS)", log)
        if process.poll() is not None:
            raise RuntimeError(f"PostgreSQL (TLS) exited:\n{server.log_text()[-2000:]}")
    except Exception:
        server.stop()
        raise
    return server


def _server_user() -> str:
    """Debian's ``postgres`` system user when the package made one, else ``nobody``."""
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return "nobody"
