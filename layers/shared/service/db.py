"""PostgreSQL access (pg8000): one connection per process, reused across warm invokes.

The connection is per thread, so a local server running handlers on several threads never
shares one. A connection that dropped while the function was idle is replaced once,
transparently; anything else becomes a typed :class:`~service.errors.DatabaseError`.

Every statement is safe behind a transaction pooler (RDS Proxy, PgBouncer in transaction mode;
DESIGN §11.1): it runs in an explicit transaction of its own, every setting is transaction-scoped,
and the connection keeps no session state. pg8000 sends a parameterised statement as three
Sync-separated exchanges; in autocommit a pooler may hand each to a different server ("unnamed
prepared statement does not exist"), inside a transaction it keeps them on one. Connections
follow libpq's ``sslmode``/``sslrootcert`` and may use RDS IAM tokens as passwords (§11.2).
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pg8000.native
from pg8000.converters import timestamptz_in
from pg8000.exceptions import DatabaseError as PgDatabaseError
from pg8000.exceptions import InterfaceError as PgInterfaceError

from service.budget import REPLY_RESERVE_MS
from service.config import get_settings
from service.errors import DatabaseError, InternalError
from service.observability import logger
from service.secrets import read_secret

CONNECT_TIMEOUT_SECONDS = 5.0
# Socket I/O limit when no invocation deadline is known; with one, the limit is the time left.
DEFAULT_IO_TIMEOUT_SECONDS = 60.0
# Past a statement's own timeout, how long to wait for the server's cancellation to arrive.
STATEMENT_GRACE_SECONDS = 0.1
# SQLSTATEs that mean "this session is gone": admin shutdown/termination, crash, connection failures.
CONNECTION_LOST_STATES = frozenset({"57P01", "57P02", "57P03", "08000", "08003", "08006"})
QUERY_CANCELED = "57014"
# undefined_table, invalid_schema_name: the service's own objects are missing (DESIGN §10.2).
MISSING_OBJECT_STATES = frozenset({"42P01", "3F000"})
INSUFFICIENT_PRIVILEGE = "42501"
# libpq's sslmode values the service honours (DESIGN §11.2); "prefer" is libpq's default too.
SSL_MODES = ("disable", "prefer", "require", "verify-ca", "verify-full")
DEFAULT_SSLMODE = "prefer"
# RDS IAM tokens live 15 minutes; a new connection after this age asks for a fresh one.
IAM_TOKEN_RENEW_SECONDS = 600.0


class StatementTimeout(DatabaseError):
    """A statement was cancelled by ``statement_timeout`` (the caller's wall ran out)."""


@dataclass(frozen=True)
class ConnectionParams:
    """What pg8000 needs to open a connection."""

    user: str
    database: str
    password: str | None = None
    host: str | None = None
    port: int = 5432
    unix_sock: str | None = None
    sslmode: str = DEFAULT_SSLMODE
    sslrootcert: str | None = None
    iam_auth: bool = False

    def open_socket(self, io_timeout_s: float) -> socket.socket:
        """Connect within :data:`CONNECT_TIMEOUT_SECONDS`, then allow ``io_timeout_s`` per read.

        pg8000's own ``timeout`` is one value for both; a short one would cut long statements
        (traverse walls up to 30 s), a long one would let a dead host eat the invocation.
        """
        connect_timeout = min(CONNECT_TIMEOUT_SECONDS, io_timeout_s)
        if self.unix_sock:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(connect_timeout)
                sock.connect(self.unix_sock)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection((self.host or "localhost", self.port), timeout=connect_timeout)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.settimeout(io_timeout_s)
        return sock

    def ssl_context(self) -> ssl.SSLContext | bool | None:
        """pg8000's ``ssl_context`` for libpq's ``sslmode``.

        pg8000 reads it as: ``False`` sends no SSLRequest; ``None`` sends one, wraps the socket
        without verification when the server says 'S' and carries on in plaintext when it says
        'N' (exactly libpq's ``prefer``); a context sends one and raises when the server refuses.
        """
        if self.unix_sock or self.sslmode == "disable":
            return False  # libpq ignores sslmode on a unix socket
        mode = self.sslmode
        if mode == "require" and self.sslrootcert:
            mode = "verify-ca"  # libpq: require with a root certificate verifies the chain
        if mode == "prefer":
            return None
        if mode == "require":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        cafile = None if self.sslrootcert in (None, "system") else self.sslrootcert
        context = ssl.create_default_context(cafile=cafile)
        context.check_hostname = mode == "verify-full"
        return context

    def with_iam_token(self) -> ConnectionParams:
        """IAM auth: the password is an RDS token, and TLS at least ``require`` (RDS refuses it without)."""
        if not self.iam_auth or self.unix_sock:
            return self
        token = iam_tokens.token(self.host or "localhost", self.port, self.user)
        sslmode = "require" if self.sslmode in ("disable", "prefer") else self.sslmode
        return replace(self, password=token, sslmode=sslmode)

    def connect(self, io_timeout_s: float = DEFAULT_IO_TIMEOUT_SECONDS) -> pg8000.native.Connection:
        params = self.with_iam_token()
        ssl_context = params.ssl_context()
        sock = params.open_socket(io_timeout_s)
        try:
            connection = pg8000.native.Connection(
                user=params.user,
                password=params.password,
                database=params.database,
                # With ``sock`` given pg8000 uses ``host`` only as the TLS server name (verify-full).
                host=params.host or "localhost",
                sock=sock,
                ssl_context=ssl_context,
                application_name="contract-drift-service",
            )
        except Exception:
            sock.close()
            raise
        connection.register_in_adapter(TIMESTAMPTZ_OID, parse_timestamptz)
        return connection


TokenGenerator = Callable[[str, int, str], str]


def rds_auth_token(host: str, port: int, user: str) -> str:
    """An RDS IAM auth token (a presigned ``rds-db:connect`` URL, signed locally with the
    function's role; the region is the function's)."""
    import boto3  # in the Lambda runtime; imported only when IAM auth is on

    return str(boto3.client("rds").generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))


class IamTokenCache:
    """RDS IAM tokens, one per (host, port, user), renewed before their 15 minutes run out.

    A token is only checked when a connection opens, so a young one is reused across
    reconnections; ``generate`` and ``clock`` are injectable for tests.
    """

    def __init__(
        self,
        generate: TokenGenerator = rds_auth_token,
        renew_after_s: float = IAM_TOKEN_RENEW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.generate = generate
        self.renew_after_s = renew_after_s
        self.clock = clock
        self._tokens: dict[tuple[str, int, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def token(self, host: str, port: int, user: str) -> str:
        key = (host, port, user)
        with self._lock:
            cached = self._tokens.get(key)
            now = self.clock()
            if cached is not None and now - cached[0] < self.renew_after_s:
                return cached[1]
            token = self.generate(host, port, user)
            self._tokens[key] = (now, token)
            return token

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


iam_tokens = IamTokenCache()


def _checked_sslmode(value: str | None, source: str) -> str:
    mode = (value or DEFAULT_SSLMODE).strip().lower()
    if mode not in SSL_MODES:
        raise InternalError(f"{source} sslmode must be one of {', '.join(SSL_MODES)}")
    return mode


def parse_database_url(url: str) -> ConnectionParams:
    """``postgresql://user:pass@host:port/db``; ``?host=/dir`` selects ``/dir/.s.PGSQL.<port>``."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise InternalError("DATABASE_URL must be a postgresql:// URL")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    port = parts.port or int(query.get("port", 5432))
    socket_dir = query.get("host")
    host = parts.hostname
    unix_sock = None
    if socket_dir and socket_dir.startswith("/"):
        unix_sock = f"{socket_dir.rstrip('/')}/.s.PGSQL.{port}"
    elif socket_dir:
        host = socket_dir
    return ConnectionParams(
        user=unquote(parts.username or query.get("user", "postgres")),
        password=unquote(parts.password) if parts.password else None,
        host=host,
        port=port,
        database=unquote(parts.path.lstrip("/")) or query.get("dbname", "postgres"),
        unix_sock=unix_sock,
        sslmode=_checked_sslmode(query.get("sslmode"), "DATABASE_URL"),
        sslrootcert=query.get("sslrootcert") or None,
    )


def params_from_rds_secret(secret: str, sslmode: str | None = None, sslrootcert: str | None = None) -> ConnectionParams:
    """The RDS-managed secret form ``{host, port, username, password, dbname}``; the secret has no
    TLS fields, so they come from ``DATABASE_SSLMODE``/``DATABASE_SSLROOTCERT``."""
    checked_sslmode = _checked_sslmode(sslmode, "DATABASE_SSLMODE")
    try:
        data = json.loads(secret)
        return ConnectionParams(
            user=str(data["username"]),
            password=str(data["password"]),
            host=str(data["host"]),
            port=int(data.get("port", 5432)),
            database=str(data.get("dbname", "postgres")),
            sslmode=checked_sslmode,
            sslrootcert=sslrootcert,
        )
    except (ValueError, KeyError, TypeError):
        raise InternalError("DATABASE_SECRET_ID does not hold an RDS-style JSON secret") from None


def connection_params() -> ConnectionParams:
    settings = get_settings()
    if settings.database_url:
        return replace(parse_database_url(settings.database_url), iam_auth=settings.database_iam_auth)
    if settings.database_secret_id:
        secret = read_secret(settings.database_secret_id)
        if secret is None:
            raise InternalError("Database secret is not configured")
        params = params_from_rds_secret(secret, settings.database_sslmode, settings.database_sslrootcert)
        return replace(params, iam_auth=settings.database_iam_auth)
    raise InternalError("Database is not configured (DATABASE_URL or DATABASE_SECRET_ID)")


TIMESTAMPTZ_OID = 1184


def parse_timestamptz(text: str) -> datetime:
    """``datetime.fromisoformat`` for Postgres' ISO output, several times faster than pg8000's
    ``strptime`` (it decodes every sampled row's ``occurred_at``); anything else (infinity, BC
    dates) falls back to pg8000's own parser."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        value: datetime = timestamptz_in(text)
        return value


def _sqlstate(exc: PgDatabaseError) -> str:
    detail = exc.args[0] if exc.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def _failure_message(sqlstate: str | None) -> str:
    """What an operator can do about a failed statement, when its SQLSTATE tells.

    A missing table or schema means the service's migrations were not applied; a refused
    privilege means they were, but the functions' login role was not granted their role.
    """
    if sqlstate in MISSING_OBJECT_STATES:
        return "Database query failed: the service's tables are missing; run `make migrate` on this database"
    if sqlstate == INSUFFICIENT_PRIVILEGE:
        return (
            "Database query failed: permission denied; grant contract_drift_app to the functions' "
            "login role (and run `make migrate` if the role does not exist)"
        )
    return "Database query failed"


def _is_connection_lost(exc: Exception) -> bool:
    if isinstance(exc, PgInterfaceError | OSError):
        return True
    return isinstance(exc, PgDatabaseError) and _sqlstate(exc) in CONNECTION_LOST_STATES


def sql_literal(value: str) -> str:
    """``value`` as an SQL string literal, for the one place values are inlined: the transaction's
    opening message, which must be a simple query (no parameters) to go in one round trip.

    The ``E''`` form means the same whatever ``standard_conforming_strings`` is.
    """
    if "\x00" in value:
        raise InternalError("A database setting cannot contain a NUL character")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def transaction_opening(
    timeout_ms: int | None = None, lock_key: str | None = None, tx_settings: Mapping[str, str] | None = None
) -> str:
    """One simple-query message that opens the transaction and makes its settings.

    ``BEGIN``, then every setting with ``set_config(..., true)`` (gone at COMMIT/ROLLBACK, so a
    pooled server connection carries nothing to its next client), then the advisory lock of
    ``lock_key`` (a transaction lock, released at the end; the statement timeout bounds its wait).
    """
    settings: dict[str, str] = dict(tx_settings or {})
    if timeout_ms is not None:
        settings["statement_timeout"] = f"{max(1, int(timeout_ms))}ms"
    parts = ["BEGIN"]
    if settings:
        calls = ", ".join(f"set_config({sql_literal(k)}, {sql_literal(v)}, true)" for k, v in settings.items())
        parts.append(f"SELECT {calls}")
    if lock_key is not None:
        parts.append(f"SELECT pg_advisory_xact_lock(hashtextextended({sql_literal(lock_key)}, 0))")
    return "; ".join(parts)


@dataclass
class _Session:
    connection: pg8000.native.Connection | None = None
    # Monotonic time by which this invocation must be done with the database (None: no deadline).
    deadline: float | None = None


def _timed_out(exc: BaseException) -> bool:
    """pg8000 wraps a socket timeout in InterfaceError; look through the chain for it."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Database:
    """Runs SQL on the thread's connection, within the invocation's deadline.

    A connection that dropped while the function was idle is replaced once. Every socket wait
    (connect, each read) is bounded by the time the invocation has left, so a dead or
    black-holed database is reported before the Lambda would be killed; a statement run under
    ``timeout_ms`` is also bounded by that limit (plus a short grace for the server's own
    cancellation to arrive) and reports :class:`StatementTimeout` either way.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _session(self) -> _Session:
        session: _Session | None = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            self._local.session = session
        return session

    @contextlib.contextmanager
    def deadline(self, remaining_ms: float | None) -> Iterator[None]:
        """Within this block, be done with the database within ``remaining_ms``.

        The reply reserve is kept back; ``None`` (no Lambda context) means no deadline.
        """
        session = self._session()
        session.deadline = (
            None if remaining_ms is None else time.monotonic() + max(0.05, (remaining_ms - REPLY_RESERVE_MS) / 1000.0)
        )
        try:
            yield
        finally:
            session.deadline = None

    def _seconds_left(self) -> float:
        deadline = self._session().deadline
        return DEFAULT_IO_TIMEOUT_SECONDS if deadline is None else deadline - time.monotonic()

    def _connection(self, wait_s: float, connect_wait_s: float) -> pg8000.native.Connection:
        session = self._session()
        if session.connection is None:
            try:
                session.connection = connection_params().connect(connect_wait_s)
            except (PgInterfaceError, PgDatabaseError, OSError) as exc:
                logger.error("Database connection failed", extra={"error": str(exc)})
                raise DatabaseError("Database is unavailable") from None
        # pg8000 keeps the socket as ``_usock`` (ours, or its TLS wrapper): bound the next reads.
        sock = getattr(session.connection, "_usock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(wait_s)
        return session.connection

    def close(self) -> None:
        """Drop this thread's connection (tests, and after a fatal error)."""
        session = self._session()
        if session.connection is not None:
            with contextlib.suppress(Exception):  # the connection is being thrown away anyway
                session.connection.close()
        session.connection = None

    def _execute(
        self,
        sql: str,
        wait_s: float,
        timeout_ms: int | None,
        lock_key: str | None,
        tx_settings: Mapping[str, str] | None,
        params: dict[str, Any],
    ) -> list[list[Any]]:
        """``sql`` in a transaction of its own: the opening message, the statement, ``COMMIT``.

        A statement after the lock is granted takes a new snapshot (READ COMMITTED), so it sees
        everything the previous holder committed. A failed transaction is rolled back here, so
        the connection is clean for the next call (and a pooler gets its server back idle).
        """
        # Connecting gets no grace: the grace only waits for a server-side cancellation to arrive.
        connect_wait_s = min(wait_s, timeout_ms / 1000.0) if timeout_ms is not None else wait_s
        connection = self._connection(wait_s, max(0.01, connect_wait_s))
        try:
            connection.run(transaction_opening(timeout_ms, lock_key, tx_settings))
            rows = connection.run(sql, **params) or []
            connection.run("COMMIT")
        except PgDatabaseError:
            with contextlib.suppress(PgInterfaceError, PgDatabaseError, OSError):
                connection.run("ROLLBACK")
            raise
        return rows

    def query(
        self,
        sql: str,
        *,
        timeout_ms: int | None = None,
        lock_key: str | None = None,
        tx_settings: Mapping[str, str] | None = None,
        **params: Any,
    ) -> list[list[Any]]:
        """Rows of ``sql`` (``:name`` placeholders), in a transaction of its own.

        ``timeout_ms`` sets ``statement_timeout`` and ``tx_settings`` any other setting (e.g.
        ``app.current_org_id`` for row-level security), all for that transaction only. With
        ``lock_key`` the transaction first takes the advisory lock of that key, so concurrent
        callers with the same key run ``sql`` one after the other.

        Every statement the service sends is safe to repeat (reads, and metering keyed by
        request id), so one retry on a fresh connection is allowed when the old one was lost
        and time remains; a database that stops answering is never waited for twice.
        """
        for attempt in (1, 2):
            wait_s = self._seconds_left()
            if timeout_ms is not None:
                wait_s = min(wait_s, timeout_ms / 1000.0 + STATEMENT_GRACE_SECONDS)
            if wait_s <= 0:
                raise (
                    StatementTimeout("No time left for the statement")
                    if timeout_ms is not None
                    else DatabaseError("No time left for the database")
                )
            try:
                return self._execute(sql, wait_s, timeout_ms, lock_key, tx_settings, params)
            except (PgInterfaceError, PgDatabaseError, OSError) as exc:
                if isinstance(exc, PgDatabaseError) and _sqlstate(exc) == QUERY_CANCELED:
                    raise StatementTimeout("Statement cancelled by its time limit") from None
                if _timed_out(exc):
                    self.close()  # the protocol state is unknown after an interrupted read
                    logger.error("Database did not answer in time", extra={"waited_s": round(wait_s, 3)})
                    if timeout_ms is not None:
                        raise StatementTimeout("Database did not answer within the statement's time limit") from None
                    raise DatabaseError("Database did not answer in time") from None
                lost = _is_connection_lost(exc)
                if lost:
                    self.close()
                if lost and attempt == 1:
                    logger.info("Database connection lost; reconnecting once")
                    continue
                state = _sqlstate(exc) if isinstance(exc, PgDatabaseError) else None
                logger.error("Database query failed", extra={"error": str(exc), "sqlstate": state})
                raise DatabaseError(_failure_message(state)) from None
        raise DatabaseError("Database query failed")  # pragma: no cover - loop always returns or raises


database = Database()
