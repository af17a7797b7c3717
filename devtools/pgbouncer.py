"""PgBouncer (Debian's package) in ``pool_mode = transaction`` in front of a test PostgreSQL.

The service must be safe behind a transaction pooler (DESIGN §11.1); the tests prove it by
running through a real one. PgBouncer listens on 127.0.0.1 only, trusts its clients and logs in
to the server with the user and password the client's URL carries (a generated ``userlist.txt``),
so whichever role a test's ``DATABASE_URL`` uses reaches the server as that role.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

from devtools.system_servers import RunAs, accepts_tcp, find_binary, free_port, wait_until
from service.db import ConnectionParams, parse_database_url

# Its own pool of one server connection, to show what a pooled connection carries between clients.
SINGLE_SUFFIX = "_pool1"


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def url_of(params: ConnectionParams, host: str, port: int, database: str | None = None) -> str:
    password = f":{quote(params.password, safe='')}" if params.password else ""
    return f"postgresql://{quote(params.user, safe='')}{password}@{host}:{port}/{quote(database or params.database)}"


def write_userlist(base_dir: Path, users: dict[str, str], owner: RunAs) -> None:
    """PgBouncer's ``auth_file``: with ``auth_type = trust`` a user must be listed, and its
    password is what PgBouncer answers when the server asks for one."""
    path = base_dir / "userlist.txt"
    path.write_text("".join(f"{_quoted(user)} {_quoted(password)}\n" for user, password in users.items()))
    os.chmod(path, 0o600)
    owner.own(path)


@dataclass
class PgBouncer:
    """A running PgBouncer; :meth:`url_for` turns a server URL into one through the pooler."""

    port: int
    pool_size: int
    upstream: ConnectionParams
    process: subprocess.Popen[bytes]
    base_dir: Path
    run_as: RunAs
    users: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.base_dir / "pgbouncer.log"

    def url_for(self, url: str, *, single_connection: bool = False) -> str:
        """``url``'s user, password and database, through the pooler (pool of one if asked)."""
        params = parse_database_url(url)
        if self.users.get(params.user) != (params.password or ""):
            self.users[params.user] = params.password or ""
            write_userlist(self.base_dir, self.users, self.run_as)
            self.process.send_signal(signal.SIGHUP)  # reload the userlist
            wait_until(lambda: self._userlist_loaded(params.user), 5.0, "PgBouncer reload", self.log)
        database = params.database + SINGLE_SUFFIX if single_connection else params.database
        return url_of(params, "127.0.0.1", self.port, database)

    def _userlist_loaded(self, user: str) -> bool:
        # PgBouncer logs nothing per reload we could wait on; a login attempt shows it took.
        try:
            connection = replace(
                parse_database_url(url_of(self.upstream, "127.0.0.1", self.port)),
                user=user,
                password=self.users[user] or None,
                sslmode="disable",
            ).connect(io_timeout_s=2.0)
        except Exception:  # noqa: BLE001 - not reloaded yet; stop waiting only if PgBouncer died
            return self.process.poll() is not None
        connection.close()
        return True

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pgbouncer(base_dir: Path, upstream_url: str, *, run_as: str | None, pool_size: int = 5) -> PgBouncer:
    """PgBouncer on a free 127.0.0.1 port, pooling ``pool_size`` server connections per user and database.

    ``run_as``: the unprivileged user to run as when we are root; it must be able to reach the
    server (for a unix socket: the user that owns the socket's directory).
    """
    binary = find_binary("pgbouncer", "/usr/sbin/pgbouncer")
    upstream = parse_database_url(upstream_url)
    server_host = str(Path(upstream.unix_sock).parent) if upstream.unix_sock else upstream.host or "127.0.0.1"
    owner = RunAs(run_as)
    base_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = base_dir / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"{upstream.database}{SINGLE_SUFFIX} = host={server_host} port={upstream.port}"
                f" dbname={upstream.database} pool_size=1",
                f"* = host={server_host} port={upstream.port}",
                "",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {base_dir / 'userlist.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "min_pool_size = 0",
                "reserve_pool_size = 0",
                "max_client_conn = 1000",
                # A client waits for a server connection at most this long (the tests' loads queue).
                "query_wait_timeout = 60",
                "server_tls_sslmode = disable",
                f"logfile = {base_dir / 'pgbouncer.log'}",
                f"pidfile = {base_dir / 'pgbouncer.pid'}",
                "log_connections = 0",
                "log_disconnections = 0",
                "",
            ]
        )
    )
    users = {upstream.user: upstream.password or ""}
    write_userlist(base_dir, users, owner)
    owner.own(base_dir, config)
    with (base_dir / "stderr.txt").open("wb") as stderr:  # what it says before its log file opens
        process = subprocess.Popen(
            [binary, str(config)], stdout=subprocess.DEVNULL, stderr=stderr, cwd=base_dir, **owner.popen_options()
        )
    bouncer = PgBouncer(port, pool_size, upstream, process, base_dir, owner, users)
    try:
        wait_until(lambda: accepts_tcp(port) or bouncer.process.poll() is not None, 10.0, "PgBouncer", bouncer.log)
        if bouncer.process.poll() is not None:
            said = (base_dir / "stderr.txt").read_text(errors="replace")
            raise RuntimeError(f"PgBouncer exited: {said[-2000:]}")
    except Exception:
        bouncer.stop()
        raise
    return bouncer
