"""The environment, parsed once per process into a validated model (DESIGN §3)."""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.errors import InternalError
from service.observability import logger

TRAVERSE_WALL_BOUNDS_MS = (500, 30_000)
TRAVERSE_HOPS_BOUNDS = (1, 16)
DEFAULT_TRAVERSE_WALL_MS = 5_000
DEFAULT_TRAVERSE_MAX_HOPS = 3
DEFAULT_IDEMPOTENCY_TTL_SECONDS = 900

PUBLIC_LLM_ENDPOINTS = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
}
DEFAULT_PLATFORM_MODEL = "gpt-4o-mini"
# PLATFORM_LLM_PROVIDER=bedrock without PLATFORM_LLM_MODEL (DESIGN §12.2). Amazon Nova Lite: an
# Amazon model, so IAM alone opens it (no Marketplace subscription, no third-party use-case form);
# Converse supports its system prompt and forcing one tool (toolChoice.tool); priced in the
# small-model tier like gpt-4o-mini with a 300k-token context; and a foundation-model id (not a
# geographic inference profile) keeps the data in the function's region. Where Nova Lite has no
# in-region on-demand throughput, set the geographic profile (us./eu./apac.amazon.nova-lite-v1:0).
# template.yaml repeats this id for its IAM grant (a unit test keeps the two equal).
DEFAULT_BEDROCK_MODEL = "amazon.nova-lite-v1:0"
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def clamp(value: int, low: int, high: int) -> int:
    """``value`` forced into ``[low, high]``."""
    return max(low, min(high, value))


def parse_flag(raw: str | None) -> bool:
    """DESIGN §6.2: ``true``, ``1``, ``yes``, ``on`` in any case switch a flag on."""
    return raw is not None and raw.strip().lower() in TRUE_WORDS


def parse_clamped_int(raw: str | None, default: int, bounds: tuple[int, int]) -> int:
    """An integer setting: absent or unparsable gives the default, anything else is clamped."""
    try:
        value = int(raw) if raw not in (None, "") else default
    except ValueError:
        value = default
    return clamp(value, *bounds)


def normalise_base_url(url: str) -> str:
    """Base URL without a trailing slash or ``/v1`` (users often paste ``.../v1``)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def parse_cidr_list(raw: str) -> tuple[IpNetwork, ...]:
    """Comma-separated CIDRs (DESIGN §13.2); ``ValueError`` names the first that is not one.

    Host bits must be zero (``127.0.0.1/8`` is refused): a network that does not say what it
    means is a configuration mistake, not something to guess at.
    """
    networks = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError:
            raise ValueError(f"{entry!r} is not a CIDR network (host bits must be zero)") from None
    return tuple(networks)


class Settings(BaseModel):
    """Every knob of both functions; build it with :func:`get_settings`."""

    model_config = ConfigDict(frozen=True)

    internal_token_secret_id: str | None = None
    database_url: str | None = None
    database_secret_id: str | None = None
    # DESIGN §11.2: TLS of the secret form (a DATABASE_URL carries its own ?sslmode=&sslrootcert=),
    # and RDS IAM tokens as the password.
    database_sslmode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] | None = None
    database_sslrootcert: str | None = None
    database_iam_auth: bool = False
    byok_encryption_key_secret_id: str | None = None
    platform_llm_secret_id: str | None = None
    platform_llm_provider: Literal["openai", "anthropic", "bedrock"] = "openai"
    platform_llm_model: str = DEFAULT_PLATFORM_MODEL
    platform_llm_endpoint: str = PUBLIC_LLM_ENDPOINTS["openai"]
    traverse_experimental_enabled: bool = False
    traverse_hard_wall_ms: int = DEFAULT_TRAVERSE_WALL_MS
    traverse_max_hops: int = DEFAULT_TRAVERSE_MAX_HOPS
    # How long the internal token is trusted from the warm cache, and how often a wrong
    # token may force a re-read (so a rotated secret is picked up without a cold start
    # while a flood of wrong tokens cannot become a flood of Secrets Manager calls).
    token_cache_seconds: int = 60
    token_refresh_min_interval_seconds: float = 5.0
    # Other secrets (LLM keys, BYOK passphrase, database credentials) change rarely.
    secret_cache_seconds: int = 300
    # DESIGN §8: the DynamoDB table of idempotency records (unset: off) and how long a stored
    # reply is replayed (0: off).
    idempotency_table_name: str | None = None
    idempotency_ttl_seconds: int = Field(default=DEFAULT_IDEMPOTENCY_TTL_SECONDS, ge=0)
    # DESIGN §13.2: networks a BYOK base_url may reach although they are not public (plain
    # http included). Empty in AWS; loopback for local runs and tests.
    byok_private_networks_allowed: tuple[IpNetwork, ...] = ()

    @property
    def idempotency_enabled(self) -> bool:
        return self.idempotency_table_name is not None and self.idempotency_ttl_seconds > 0

    @field_validator("byok_private_networks_allowed", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: object) -> object:
        return parse_cidr_list(value) if isinstance(value, str) else value

    @field_validator("platform_llm_endpoint")
    @classmethod
    def _strip_v1(cls, value: str) -> str:
        return normalise_base_url(value)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read DESIGN §3's variables; empty values count as unset."""

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        provider = (opt("PLATFORM_LLM_PROVIDER") or "openai").lower()
        raw: dict[str, object] = {
            "internal_token_secret_id": opt("INTERNAL_TOKEN_SECRET_ID"),
            "database_url": opt("DATABASE_URL"),
            "database_secret_id": opt("DATABASE_SECRET_ID"),
            "database_sslmode": (opt("DATABASE_SSLMODE") or "").lower() or None,
            "database_sslrootcert": opt("DATABASE_SSLROOTCERT"),
            "database_iam_auth": parse_flag(env.get("DATABASE_IAM_AUTH")),
            "byok_encryption_key_secret_id": opt("BYOK_ENCRYPTION_KEY_SECRET_ID"),
            "platform_llm_secret_id": opt("PLATFORM_LLM_SECRET_ID"),
            "platform_llm_provider": provider,
            "platform_llm_model": opt("PLATFORM_LLM_MODEL")
            or (DEFAULT_BEDROCK_MODEL if provider == "bedrock" else DEFAULT_PLATFORM_MODEL),
            # Bedrock is reached where boto3 says (AWS_ENDPOINT_URL_BEDROCK_RUNTIME or the region's).
            "platform_llm_endpoint": ""
            if provider == "bedrock"
            else opt("PLATFORM_LLM_ENDPOINT") or PUBLIC_LLM_ENDPOINTS.get(provider, PUBLIC_LLM_ENDPOINTS["openai"]),
            "traverse_experimental_enabled": parse_flag(env.get("TRAVERSE_EXPERIMENTAL_ENABLED")),
            "traverse_hard_wall_ms": parse_clamped_int(
                env.get("TRAVERSE_HARD_WALL_MS"), DEFAULT_TRAVERSE_WALL_MS, TRAVERSE_WALL_BOUNDS_MS
            ),
            "traverse_max_hops": parse_clamped_int(
                env.get("TRAVERSE_MAX_HOPS"), DEFAULT_TRAVERSE_MAX_HOPS, TRAVERSE_HOPS_BOUNDS
            ),
            "idempotency_table_name": opt("IDEMPOTENCY_TABLE_NAME"),
            "byok_private_networks_allowed": env.get("BYOK_PRIVATE_NETWORKS_ALLOWED", ""),
        }
        for name, field in (
            ("INTERNAL_TOKEN_CACHE_SECONDS", "token_cache_seconds"),
            ("INTERNAL_TOKEN_REFRESH_MIN_INTERVAL_SECONDS", "token_refresh_min_interval_seconds"),
            ("SECRET_CACHE_SECONDS", "secret_cache_seconds"),
            ("IDEMPOTENCY_TTL_SECONDS", "idempotency_ttl_seconds"),
        ):
            if (value := opt(name)) is not None:
                raw[field] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            fields = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
            # The reply names the fields; the log says what is wrong with them.
            logger.error("Service configuration is invalid", extra={"problems": [err["msg"] for err in exc.errors()]})
            raise InternalError("Service configuration is invalid", {"fields": fields}) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (tests call ``get_settings.cache_clear()``)."""
    return Settings.from_env(os.environ)
