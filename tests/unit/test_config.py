"""Environment parsing shared by both functions (DESIGN §3)."""

from __future__ import annotations

import pytest

from service.config import Settings, normalise_base_url
from service.db import params_from_rds_secret, parse_database_url
from service.errors import InternalError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.platform_llm_provider == "openai"
    assert settings.platform_llm_model == "gpt-4o-mini"
    assert settings.platform_llm_endpoint == "https://api.openai.com"
    assert settings.internal_token_secret_id is None


def test_anthropic_default_endpoint_and_trailing_v1_tolerated():
    assert (
        Settings.from_env({"PLATFORM_LLM_PROVIDER": "Anthropic"}).platform_llm_endpoint == "https://api.anthropic.com"
    )
    settings = Settings.from_env({"PLATFORM_LLM_ENDPOINT": "http://127.0.0.1:9/v1/"})
    assert settings.platform_llm_endpoint == "http://127.0.0.1:9"


@pytest.mark.parametrize(("given", "expected"), [("https://x/v1", "https://x"), ("https://x/", "https://x")])
def test_normalise_base_url(given: str, expected: str):
    assert normalise_base_url(given) == expected


def test_unknown_provider_is_a_configuration_error():
    with pytest.raises(InternalError) as raised:
        Settings.from_env({"PLATFORM_LLM_PROVIDER": "gemini"})
    assert raised.value.details == {"fields": ["platform_llm_provider"]}


def test_blank_variables_count_as_unset():
    assert Settings.from_env({"DATABASE_URL": "  ", "INTERNAL_TOKEN_SECRET_ID": ""}).database_url is None


def test_database_url_with_unix_socket_query():
    params = parse_database_url("postgresql://postgres:@/postgres?host=/tmp/pg")
    assert params.unix_sock == "/tmp/pg/.s.PGSQL.5432"
    assert (params.user, params.database, params.password) == ("postgres", "postgres", None)


def test_database_url_with_port_password_and_tls():
    params = parse_database_url("postgresql://app:p%40ss@db.example:6543/drift?sslmode=require")
    assert (params.host, params.port, params.password, params.database, params.sslmode) == (
        "db.example",
        6543,
        "p@ss",
        "drift",
        "require",
    )
    assert parse_database_url("postgres://u@/d?host=/s&port=5433").unix_sock == "/s/.s.PGSQL.5433"


def test_rds_secret_form():
    params = params_from_rds_secret('{"host":"h","port":5433,"username":"u","password":"p","dbname":"d"}')
    assert (params.host, params.port, params.user, params.password, params.database) == ("h", 5433, "u", "p", "d")
    with pytest.raises(InternalError):
        params_from_rds_secret('{"host": "h"}')


def test_non_postgres_url_is_refused():
    with pytest.raises(InternalError):
        parse_database_url("mysql://x@y/z")


def test_timestamptz_parser_matches_pg8000_and_falls_back():
    from pg8000.converters import timestamptz_in

    from service.db import parse_timestamptz

    for text in ("2026-11-24 04:08:27.295237+00", "2026-11-24 04:08:27+05:30", "1999-01-08 04:05:06.1-08"):
        assert parse_timestamptz(text) == timestamptz_in(text)
    assert parse_timestamptz("infinity") == timestamptz_in("infinity")


def test_database_tls_and_iam_settings():
    settings = Settings.from_env(
        {"DATABASE_SSLMODE": " Verify-CA ", "DATABASE_SSLROOTCERT": "/opt/ca.pem", "DATABASE_IAM_AUTH": "TRUE"}
    )
    assert (settings.database_sslmode, settings.database_sslrootcert, settings.database_iam_auth) == (
        "verify-ca",
        "/opt/ca.pem",
        True,
    )
    assert Settings.from_env({}).database_sslmode is None
    with pytest.raises(InternalError) as raised:
        Settings.from_env({"DATABASE_SSLMODE": "allow-anything"})
    assert raised.value.details == {"fields": ["database_sslmode"]}


def test_require_with_a_root_certificate_verifies_like_verify_ca():
    import ssl

    plain = parse_database_url("postgresql://u@h/d?sslmode=require").ssl_context()
    assert isinstance(plain, ssl.SSLContext) and plain.verify_mode == ssl.CERT_NONE
    assert parse_database_url("postgresql://u@h/d?sslmode=disable").ssl_context() is False
    assert parse_database_url("postgresql://u@h/d").ssl_context() is None  # prefer: pg8000 falls back on 'N'
    full = parse_database_url("postgresql://u@h/d?sslmode=verify-full").ssl_context()
    assert isinstance(full, ssl.SSLContext) and full.check_hostname and full.verify_mode == ssl.CERT_REQUIRED


def test_bedrock_needs_no_endpoint_and_has_its_own_default_model():
    from service.config import DEFAULT_BEDROCK_MODEL

    settings = Settings.from_env({"PLATFORM_LLM_PROVIDER": "Bedrock", "PLATFORM_LLM_ENDPOINT": "https://ignored"})
    assert settings.platform_llm_provider == "bedrock"
    assert settings.platform_llm_model == DEFAULT_BEDROCK_MODEL == "amazon.nova-lite-v1:0"
    assert settings.platform_llm_endpoint == ""  # boto3 finds Bedrock (AWS_ENDPOINT_URL_BEDROCK_RUNTIME)
    profile = "eu.amazon.nova-lite-v1:0"
    assert (
        Settings.from_env({"PLATFORM_LLM_PROVIDER": "bedrock", "PLATFORM_LLM_MODEL": profile}).platform_llm_model
        == profile
    )
