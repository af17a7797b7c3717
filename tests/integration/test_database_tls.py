"""DESIGN §11.2: ``sslmode``/``sslrootcert`` as libpq means them, and RDS IAM tokens.

Against Debian's PostgreSQL with TLS on (the embedded one has no SSL), with a certificate for
``localhost`` from a test CA; plaintext-only TCP is PgBouncer's client side (no client TLS).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import trustme

from devtools.pgbouncer import PgBouncer
from devtools.seed import make_tenant
from devtools.tls_postgres import PASSWORD_ROLE, TlsPostgres, start_tls_postgres
from service.db import (
    ConnectionParams,
    Database,
    IamTokenCache,
    connection_params,
    database,
    parse_database_url,
    rds_auth_token,
)
from service.errors import DatabaseError
from tests.conftest import reset_service_caches
from tests.integration.drift_support import call_http, score_body

SSL_REQUEST_CODE = 80877103
PROTOCOL_3 = 196608


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("tls-ca")
    right, wrong = trustme.CA(), trustme.CA()
    right.cert_pem.write_to_path(str(base / "right-ca.pem"))
    wrong.cert_pem.write_to_path(str(base / "wrong-ca.pem"))
    return {"ca": right, "right": str(base / "right-ca.pem"), "wrong": str(base / "wrong-ca.pem")}


@pytest.fixture(scope="module")
def tls_server(ca_files: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    cert = ca_files["ca"].issue_cert("localhost")  # not 127.0.0.1: that name is the mismatch
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    server = start_tls_postgres(tmp_path_factory.mktemp("tls-postgres"), chain, cert.private_key_pem.bytes())
    yield server
    server.stop()


@pytest.fixture
def tls_admin(tls_server: TlsPostgres) -> Iterator[Any]:
    connection = tls_server.admin_connect()
    yield connection
    connection.close()


def backend_uses_tls(admin: Any, pid: int) -> bool:
    rows = admin.run("SELECT ssl FROM pg_stat_ssl WHERE pid = :pid", pid=pid)
    assert rows, f"no backend {pid}"
    return bool(rows[0][0])


def run_once(url: str) -> int:
    """Open a connection as the service does, return its backend pid."""
    connection = parse_database_url(url).connect(io_timeout_s=5.0)
    try:
        return int(connection.run("SELECT pg_backend_pid()")[0][0])
    finally:
        connection.close()


def test_verify_full_with_the_right_ca_is_encrypted(tls_server, tls_admin, ca_files, service_env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", tls_server.url(sslmode="verify-full", sslrootcert=ca_files["right"]))
    reset_service_caches()
    db = Database()
    try:
        pid = db.query("SELECT pg_backend_pid()")[0][0]
        assert backend_uses_tls(tls_admin, pid)
    finally:
        db.close()


def test_wrong_ca_is_a_500_and_nothing_reaches_the_database(
    tls_server, tls_admin, ca_files, service_env, admin_db, monkeypatch
):
    tenant = make_tenant(admin_db, "pro")
    started = tls_admin.run("SELECT clock_timestamp()")[0][0]
    before = len(tls_server.log_text())
    monkeypatch.setenv("DATABASE_URL", tls_server.url(sslmode="verify-full", sslrootcert=ca_files["wrong"]))
    reset_service_caches()
    database.close()
    try:
        status, body = call_http(score_body(tenant, [("GET", "/a")]))
    finally:
        database.close()
    assert (status, body["error_code"]) == (500, "DATABASE_ERROR")
    seen = tls_server.log_text()[before:]
    assert "could not accept SSL connection" in seen  # the service did knock, and was turned away
    assert "connection authorized" not in seen
    assert "statement:" not in seen
    backends = tls_admin.run(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_start >= :started AND pid <> pg_backend_pid()",
        started=started,
    )
    assert backends == [[0]]


def test_hostname_mismatch_is_refused_by_verify_full_and_accepted_by_verify_ca(tls_server, tls_admin, ca_files):
    with pytest.raises(OSError, match=r"(?i)hostname|match"):
        run_once(tls_server.url(host="127.0.0.1", sslmode="verify-full", sslrootcert=ca_files["right"]))
    pid = run_once(tls_server.url(host="127.0.0.1", sslmode="verify-ca", sslrootcert=ca_files["right"]))
    assert pid > 0
    # require with a root certificate verifies the chain, as in libpq: the wrong CA is refused.
    with pytest.raises(OSError, match=r"(?i)certificate verify failed"):
        run_once(tls_server.url(sslmode="require", sslrootcert=ca_files["wrong"]))


def test_require_and_prefer_encrypt_without_verifying(tls_server, tls_admin):
    connection = parse_database_url(tls_server.url(host="127.0.0.1", sslmode="require")).connect()
    try:
        assert backend_uses_tls(tls_admin, connection.run("SELECT pg_backend_pid()")[0][0])
    finally:
        connection.close()
    connection = parse_database_url(tls_server.url(host="127.0.0.1")).connect()  # prefer, the default
    try:
        assert backend_uses_tls(tls_admin, connection.run("SELECT pg_backend_pid()")[0][0])
    finally:
        connection.close()


def test_disable_is_plaintext(tls_server, tls_admin):
    connection = parse_database_url(tls_server.url(sslmode="disable")).connect()
    try:
        assert not backend_uses_tls(tls_admin, connection.run("SELECT pg_backend_pid()")[0][0])
    finally:
        connection.close()


def first_message(params: ConnectionParams) -> bytes:
    """The first 8 bytes a client sends to a server that never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def accept() -> None:
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(5)
            received.append(peer.recv(8))

    thread = threading.Thread(target=accept)
    thread.start()
    with pytest.raises(Exception):  # noqa: B017 - the listener hangs up after 8 bytes
        replace(params, host="127.0.0.1", port=listener.getsockname()[1]).connect(io_timeout_s=2.0)
    thread.join(5)
    listener.close()
    return received[0]


@pytest.mark.parametrize(
    ("sslmode", "code"),
    [
        ("disable", PROTOCOL_3),
        ("prefer", SSL_REQUEST_CODE),
        ("require", SSL_REQUEST_CODE),
        ("verify-ca", SSL_REQUEST_CODE),
    ],
)
def test_only_disable_skips_the_ssl_request(sslmode, code):
    params = ConnectionParams(user="u", database="d", sslmode=sslmode)
    assert struct.unpack("!ii", first_message(params))[1] == code


def test_prefer_falls_back_on_a_plaintext_server_and_require_does_not(postgres, pgbouncer: PgBouncer):
    # PgBouncer's client side has no TLS: it answers the SSLRequest with 'N', as a server without TLS does.
    plaintext = pgbouncer.url_for(postgres.url)
    assert run_once(plaintext) > 0  # prefer (the default)
    for mode in ("require", "verify-ca", "verify-full"):
        with pytest.raises(Exception, match=r"(?i)refuses SSL"):
            run_once(f"{plaintext}?sslmode={mode}")


def test_unix_socket_ignores_sslmode(postgres):
    assert run_once(f"{postgres.url}&sslmode=verify-full&sslrootcert=/nonexistent.pem") > 0


def test_unknown_sslmode_is_refused():
    with pytest.raises(Exception, match="sslmode must be one of"):
        parse_database_url("postgresql://u@h/d?sslmode=allowed")


def test_secret_form_takes_tls_from_the_environment(service_env, aws_endpoint, monkeypatch):
    from devtools.aws import put_secret

    put_secret("test/db-secret", '{"host":"db.example","port":5432,"username":"u","password":"p","dbname":"d"}')
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DATABASE_SECRET_ID", "test/db-secret")
    monkeypatch.setenv("DATABASE_SSLMODE", "Verify-Full")
    monkeypatch.setenv("DATABASE_SSLROOTCERT", "/opt/rds-bundle.pem")
    reset_service_caches()
    params = connection_params()
    assert (params.sslmode, params.sslrootcert, params.host) == ("verify-full", "/opt/rds-bundle.pem", "db.example")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_iam_token_is_generated_by_boto3_cached_and_renewed(aws_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    calls: list[tuple[str, int, str]] = []

    def counted(host: str, port: int, user: str) -> str:
        calls.append((host, port, user))
        return rds_auth_token(host, port, user)

    clock = FakeClock()
    tokens = IamTokenCache(generate=counted, clock=clock)
    first = tokens.token("db.example", 5432, "drift_app")
    assert first.startswith("db.example:5432/?Action=connect&DBUser=drift_app")
    assert "X-Amz-Signature=" in first and "eu-west-1" in first
    clock.now += 599
    assert tokens.token("db.example", 5432, "drift_app") == first
    assert len(calls) == 1
    clock.now += 2  # past ten minutes: renewed, well before the token's fifteen
    tokens.token("db.example", 5432, "drift_app")
    assert len(calls) == 2


@pytest.mark.parametrize("sslmode", ["disable", "prefer"])
def test_iam_auth_uses_the_token_as_password_over_tls(tls_server, tls_admin, monkeypatch, sslmode):
    token = f"iam-token-{time.time_ns()}"
    tls_admin.run(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}")
    tls_admin.run(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{token}'")
    asked: list[tuple[str, int, str]] = []

    def generate(host: str, port: int, user: str) -> str:
        asked.append((host, port, user))
        return token

    monkeypatch.setattr("service.db.iam_tokens", IamTokenCache(generate=generate))
    params = replace(
        parse_database_url(tls_server.url(host="127.0.0.1", user=PASSWORD_ROLE, sslmode=sslmode)), iam_auth=True
    )
    connection = params.connect()
    try:
        # pg_hba admits this role only over TLS and checks its password: both held.
        assert backend_uses_tls(tls_admin, connection.run("SELECT pg_backend_pid()")[0][0])
    finally:
        connection.close()
    assert asked == [("127.0.0.1", tls_server.port, PASSWORD_ROLE)]
    wrong = replace(params, iam_auth=False, password="not-the-token", sslmode="require")
    with pytest.raises(Exception, match=r"(?i)password authentication failed"):
        wrong.connect()


def test_iam_auth_from_the_environment(service_env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5432/d?sslmode=verify-full")
    monkeypatch.setenv("DATABASE_IAM_AUTH", "true")
    reset_service_caches()
    params = connection_params()
    assert params.iam_auth and params.sslmode == "verify-full"


def test_unreachable_tls_database_is_a_database_error(service_env, ca_files, monkeypatch):
    monkeypatch.setenv(
        "DATABASE_URL", f"postgresql://u@localhost:1/d?sslmode=verify-full&sslrootcert={ca_files['right']}"
    )
    reset_service_caches()
    db = Database()
    with pytest.raises(DatabaseError):
        db.query("SELECT 1")
