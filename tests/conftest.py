"""Shared fixtures: a real PostgreSQL, Secrets Manager on a moto server, an HTTP LLM.

All three are started once per test session by the test run itself; each test gets empty
tables, fresh secrets and an unscripted LLM. The database is set up as next to the registry
(devtools/postgres.py): the registry's stand-in tables owned by a registry owner role, the
service's migrations applied, and the service logging in as a NOSUPERUSER NOBYPASSRLS role that
holds only ``contract_drift_app``, so a privilege the migrations forgot fails a test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from devtools.aws import (
    IDEMPOTENCY_TABLE,
    clear_idempotency_table,
    delete_secret,
    put_secret,
    start_moto,
    use_local_aws,
)
from devtools.fake_llm import LOOPBACK_NETWORKS, FakeLlmServer
from devtools.pgbouncer import PgBouncer, start_pgbouncer
from devtools.postgres import EmbeddedPostgres, start_postgres, truncate_app_tables
from service.config import get_settings
from service.db import database, parse_database_url
from service.drift.spec.source import clear_s3_cache
from service.llm import clear_structured_refusals
from service.secrets import token_verifier

INTERNAL_TOKEN = "test-internal-token-0123456789"
TOKEN_SECRET = "test/internal-token"
PLATFORM_KEY = "sk-platform-test"
PLATFORM_SECRET = "test/platform-llm-key"
BYOK_PASSPHRASE = "byok passphrase for tests"
BYOK_SECRET = "test/byok-passphrase"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    database.close()
    server.stop()


# A pool smaller than the concurrent clients of the pooled tests, so they queue for server connections.
PGBOUNCER_POOL_SIZE = 5


@pytest.fixture(scope="session")
def pgbouncer(postgres: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the session's Postgres (DESIGN §11.1), started
    on first use. It runs as the user that owns the server's socket directory."""
    bouncer = start_pgbouncer(
        tmp_path_factory.mktemp("pgbouncer"),
        postgres.url,
        run_as=postgres.server.system_user,
        pool_size=PGBOUNCER_POOL_SIZE,
    )
    yield bouncer
    database.close()
    bouncer.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, postgres: EmbeddedPostgres) -> str:
    """The service's ``DATABASE_URL``: straight to Postgres, or through PgBouncer when a test is
    parametrised with ``"pgbouncer"`` (tests/integration/conftest.py runs marked modules both ways)."""
    url = postgres.url
    if getattr(request, "param", "direct") == "pgbouncer":
        bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
        url = bouncer.url_for(url)
    return url


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    server, endpoint = start_moto()
    use_local_aws(endpoint)
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[FakeLlmServer]:
    server = FakeLlmServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin_db(postgres: EmbeddedPostgres) -> Iterator[Any]:
    """A connection of the tests' own, to arrange data and check what the service wrote.

    It logs in as the registry's owner role (not a superuser): rows are written as the registry
    writes them, and ``audit_logs`` shows only the org set in ``app.current_org_id``.
    """
    connection = postgres.connect()
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def superuser_db(postgres: EmbeddedPostgres) -> Iterator[Any]:
    """A superuser connection, only for what an operator does to the server itself: terminating
    the service's sessions (the registry owner may not signal another role's backend)."""
    connection = parse_database_url(postgres.superuser_url).connect()
    yield connection
    connection.close()


def reset_service_caches() -> None:
    """Forget everything the warm process cached (as a cold start would)."""
    get_settings.cache_clear()
    parameters.clear_caches()
    token_verifier._last_forced_refresh = float("-inf")
    clear_structured_refusals()


_service_database_url: str | None = None


@pytest.fixture
def service_env(
    monkeypatch: pytest.MonkeyPatch,
    postgres: EmbeddedPostgres,
    aws_endpoint: str,
    llm_server: FakeLlmServer,
    admin_db: Any,
    database_url: str,
) -> Iterator[dict[str, str]]:
    """The environment of a deployed function, pointing at the local stand-ins."""
    truncate_app_tables(admin_db)
    global _service_database_url
    if database_url != _service_database_url:  # the warm connection leads to the other route
        database.close()
        _service_database_url = database_url
    llm_server.reset()
    for name, value in (
        (TOKEN_SECRET, INTERNAL_TOKEN),
        (PLATFORM_SECRET, PLATFORM_KEY),
        (BYOK_SECRET, BYOK_PASSPHRASE),
    ):
        put_secret(name, value, aws_endpoint)
    # One moto server per session: an empty table, so no test replays another test's request.
    clear_idempotency_table(IDEMPOTENCY_TABLE, aws_endpoint)
    env = {
        "DATABASE_URL": database_url,
        "INTERNAL_TOKEN_SECRET_ID": TOKEN_SECRET,
        "PLATFORM_LLM_SECRET_ID": PLATFORM_SECRET,
        "BYOK_ENCRYPTION_KEY_SECRET_ID": BYOK_SECRET,
        "PLATFORM_LLM_PROVIDER": "openai",
        "PLATFORM_LLM_MODEL": "gpt-4o-mini",
        "PLATFORM_LLM_ENDPOINT": llm_server.base_url,
        "POWERTOOLS_METRICS_NAMESPACE": "Tests",
        "POWERTOOLS_SERVICE_NAME": "tests",
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
        # The fake LLMs listen on loopback over plain http (DESIGN §13.2).
        "BYOK_PRIVATE_NETWORKS_ALLOWED": LOOPBACK_NETWORKS,
    }
    for name in (
        "DATABASE_SECRET_ID",
        "IDEMPOTENCY_TTL_SECONDS",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "TRAVERSE_EXPERIMENTAL_ENABLED",
        "TRAVERSE_HARD_WALL_MS",
        "TRAVERSE_MAX_HOPS",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_service_caches()
    yield env
    reset_service_caches()


@pytest.fixture
def clean_secret(aws_endpoint: str) -> Iterator[Any]:
    """Delete secrets a test removes, and restore the standard ones afterwards."""
    removed: list[str] = []

    def remove(name: str) -> None:
        delete_secret(name, aws_endpoint)
        removed.append(name)

    yield remove
    for name in removed:
        value = {TOKEN_SECRET: INTERNAL_TOKEN, PLATFORM_SECRET: PLATFORM_KEY, BYOK_SECRET: BYOK_PASSPHRASE}.get(name)
        if value:
            put_secret(name, value, aws_endpoint)


os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_DEV", "false")


@pytest.fixture
def spec_bucket(aws_endpoint: str) -> Iterator[tuple[Any, str]]:
    """A fresh bucket on the moto server (an S3 client, its name); the warm S3 spec cache is emptied."""
    clear_s3_cache()
    client = boto3.client("s3", endpoint_url=aws_endpoint)
    name = f"specs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield client, name
    clear_s3_cache()


@pytest.fixture
def idempotency_off(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that repeat one request on purpose (to load a guard, to fault a second call):
    idempotency (DESIGN §8) would answer the repeats with a replay or a 409 before the code under
    test runs. tests/integration/test_idempotency.py and the burst test cover idempotency itself."""
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "0")
    get_settings.cache_clear()
