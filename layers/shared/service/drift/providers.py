"""Which LLM an organization's call goes to, and whether its quota allows it (DESIGN §5.7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from service.config import PUBLIC_LLM_ENDPOINTS, Settings, normalise_base_url
from service.drift.byok import ByokDecryptionError, decrypt_api_key
from service.drift.repository import OrgContext
from service.errors import InternalError, ResourceLimitExceeded
from service.llm import LlmTarget
from service.observability import logger
from service.secrets import read_configured_secret

DEFAULT_MONTHLY_TOKENS = {"free": 0, "pro": 100_000, "team": 1_000_000}
PAID_PLANS = frozenset({"pro", "team"})
DEFAULT_BYOK_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
QUOTA_KEY = "ai_tokens_per_month"


@dataclass(frozen=True)
class ProviderChoice:
    kind: Literal["byok", "platform"]
    target: LlmTarget
    # The month's platform-token limit (negative: unlimited); None for BYOK, which is not metered.
    monthly_limit: int | None = None


def monthly_token_limit(plan: str, limits: dict[str, Any], quota_override: dict[str, Any] | None) -> int:
    """The month's platform-token limit: plan default < ``limits_json`` < ``quota`` setting.

    A negative limit means unlimited. Values that are not integers are ignored.
    """
    limit = DEFAULT_MONTHLY_TOKENS.get(plan, 0)
    for source in (limits, quota_override or {}):
        value = source.get(QUOTA_KEY)
        if isinstance(value, int) and not isinstance(value, bool):
            limit = value
        elif isinstance(value, float) and value.is_integer():
            limit = int(value)
    return limit


def quota_allows(limit: int, used: int) -> bool:
    """True while the month's usage is below the limit (or the limit is unlimited)."""
    return limit < 0 or used < limit


def _byok_target(setting: dict[str, Any] | None, settings: Settings) -> LlmTarget | None:
    """The org's own key when it is enabled and usable; ``None`` otherwise (logged)."""
    if not setting or setting.get("enabled") is not True:
        return None
    provider = str(setting.get("provider") or "openai").lower()
    encrypted = setting.get("api_key")
    if provider not in DEFAULT_BYOK_MODELS or not isinstance(encrypted, str) or not encrypted:
        logger.warning("BYOK setting is enabled but unusable", extra={"provider": provider})
        return None
    passphrase = read_configured_secret(settings.byok_encryption_key_secret_id)
    if passphrase is None:
        logger.warning("BYOK key present but BYOK_ENCRYPTION_KEY_SECRET_ID is not configured")
        return None
    try:
        api_key = decrypt_api_key(encrypted, passphrase)
    except ByokDecryptionError as exc:
        logger.warning("BYOK key cannot be decrypted", extra={"reason": str(exc)})
        return None
    base_url = setting.get("base_url") if isinstance(setting.get("base_url"), str) else None
    model = setting.get("model") if isinstance(setting.get("model"), str) else None
    return LlmTarget(
        provider=provider,  # type: ignore[arg-type]  # checked against DEFAULT_BYOK_MODELS
        base_url=normalise_base_url(base_url or PUBLIC_LLM_ENDPOINTS[provider]),
        api_key=api_key,
        model=model or DEFAULT_BYOK_MODELS[provider],
        egress_guarded=True,  # the org's own URL: DESIGN §13
    )


def choose_provider(org: OrgContext, settings: Settings) -> ProviderChoice:
    """BYOK when enabled and usable, else the platform key on a paid plan within quota.

    Raises ``ResourceLimitExceeded`` when AI is disabled for the org or its quota is spent,
    and ``InternalError`` when a paid org should use the platform key but none is configured.
    """
    byok = _byok_target(org.byok_setting, settings)
    if byok is not None:
        return ProviderChoice(kind="byok", target=byok)
    if org.plan not in PAID_PLANS:
        raise ResourceLimitExceeded(
            "AI analysis is not available on this plan without an enabled BYOK key",
            {"reason": "ai_disabled", "plan": org.plan},
        )
    limit = monthly_token_limit(org.plan, org.limits, org.quota_setting)
    if not quota_allows(limit, org.tokens_used_this_month):
        raise ResourceLimitExceeded(
            "Monthly AI token quota exhausted",
            {"reason": "quota_exhausted", "limit": limit, "used": org.tokens_used_this_month},
        )
    api_key = read_configured_secret(settings.platform_llm_secret_id)
    if api_key is None:
        raise InternalError("No platform LLM provider is configured (PLATFORM_LLM_SECRET_ID)")
    return ProviderChoice(
        kind="platform",
        target=LlmTarget(
            provider=settings.platform_llm_provider,
            base_url=settings.platform_llm_endpoint,
            api_key=api_key,
            model=settings.platform_llm_model,
        ),
        monthly_limit=limit,
    )
