"""Which LLM an organization's call goes to, and whether its quota allows it.

DESIGN §5 rule 7 as the registry applies it (§10.3): the effective plan from the latest
subscription, the monthly limit with no plan defaults, and the BYOK provider mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from service.config import PUBLIC_LLM_ENDPOINTS, Settings, normalise_base_url
from service.drift.byok import ByokDecryptionError, decrypt_api_key
from service.drift.repository import OrgContext, Subscription
from service.errors import InternalError, ResourceLimitExceeded
from service.llm import LlmTarget, ProviderName
from service.observability import logger
from service.secrets import read_configured_secret

PAID_PLANS = frozenset({"pro", "team"})
QUOTA_KEY = "ai_tokens_per_month"

# DESIGN §10.3.2: a paid org whose latest subscription lapsed counts as free.
LAPSED_STATUSES = frozenset({"canceled", "unpaid", "incomplete", "incomplete_expired"})
PAST_DUE_GRACE = timedelta(hours=24)

# DESIGN §10.3.4: these names (any case) speak Anthropic's wire format; every other name is an
# OpenAI-compatible server, at the setting's base_url when given, else OpenAI's public URL.
ANTHROPIC_PROVIDER_NAMES = frozenset({"anthropic", "claude"})
# A setting without ``model`` gets its provider's small general model. An unknown (custom) name
# gets gpt-4o-mini: the model name OpenAI-compatible gateways and proxies most commonly route.
DEFAULT_BYOK_MODELS = {
    "anthropic": "claude-3-5-haiku-latest",
    "claude": "claude-3-5-haiku-latest",
    "openai": "gpt-4o-mini",
    "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "fireworks": "accounts/fireworks/models/llama-v3p3-70b-instruct",
}
DEFAULT_OPENAI_COMPATIBLE_MODEL = "gpt-4o-mini"
# A known OpenAI-compatible vendor named without a ``base_url`` is called at its own public URL, so
# its key never travels to another vendor; an unknown name without one goes to OpenAI's.
DEFAULT_BYOK_ENDPOINTS = {
    "together": "https://api.together.xyz",
    "fireworks": "https://api.fireworks.ai/inference",
}
BYOK_UNDECRYPTABLE = "BYOK key could not be decrypted"


@dataclass(frozen=True)
class ProviderChoice:
    kind: Literal["byok", "platform"]
    target: LlmTarget
    # The month's platform-token limit (negative: unlimited); None for BYOK, which is not metered.
    monthly_limit: int | None = None


def effective_plan(plan: str, subscription: Subscription | None, now: datetime) -> str:
    """The plan the registry bills by: a ``pro``/``team`` org whose latest subscription is
    lapsed, or ``past_due`` for more than 24 h, counts as ``free``.

    ``active``, ``trialing``, a younger ``past_due`` and no subscription at all keep ``plan``;
    so does a ``past_due`` row without ``updated_at`` (its age is unknown, not proven old).
    """
    if plan not in PAID_PLANS or subscription is None:
        return plan
    if subscription.status in LAPSED_STATUSES:
        return "free"
    if subscription.status == "past_due" and subscription.updated_at is not None:
        updated_at = subscription.updated_at
        if updated_at.tzinfo is None:  # a timestamp without time zone is the registry's UTC
            updated_at = updated_at.replace(tzinfo=UTC)
        if now - updated_at > PAST_DUE_GRACE:
            return "free"
    return plan


def _strict_int(value: Any) -> int | None:
    """``value`` when it is a JSON integer; ``100000.0``, ``"100000"`` and booleans are not."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def monthly_token_limit(limits: dict[str, Any], quota_override: dict[str, Any] | None) -> int:
    """The month's platform-token limit: ``ai_tokens_per_month`` of ``limits_json`` with the
    ``quota`` setting merged over it (top-level keys). Negative means unlimited.

    Absent or not an integer is 0, and there is no per-plan default: the registry writes the
    plan's limits into ``limits_json`` when the plan changes (DESIGN §10.3.3).
    """
    merged = {**limits, **(quota_override or {})}
    return _strict_int(merged.get(QUOTA_KEY)) or 0


def quota_allows(limit: int, used: int) -> bool:
    """True while the month's usage is below the limit (or the limit is unlimited)."""
    return limit < 0 or used < limit


def byok_wire_format(provider: str) -> ProviderName:
    """``anthropic``/``claude`` in any case → Anthropic; any other name → OpenAI-compatible."""
    return "anthropic" if provider.strip().lower() in ANTHROPIC_PROVIDER_NAMES else "openai"


@dataclass(frozen=True)
class ByokSetting:
    """An enabled, well-formed ``byok`` setting (the key still sealed)."""

    provider: str
    sealed_key: str
    base_url: str | None
    model: str | None


def _optional_text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def parse_byok_setting(setting: dict[str, Any] | None) -> ByokSetting | None:
    """The ``byok`` setting when it counts; None is "no BYOK", as in the registry: disabled,
    an empty or missing ``api_key``, or malformed (provider not a non-empty string,
    ``base_url``/``model`` neither a string nor null)."""
    if not setting or setting.get("enabled") is not True:
        return None
    provider, sealed = setting.get("provider"), setting.get("api_key")
    if not isinstance(sealed, str) or not sealed:
        return None
    optional_ok = all(setting.get(key) is None or isinstance(setting.get(key), str) for key in ("base_url", "model"))
    if not isinstance(provider, str) or not provider.strip() or not optional_ok:
        logger.warning("BYOK setting is enabled but malformed; ignored")
        return None
    return ByokSetting(
        provider=provider.strip(),
        sealed_key=sealed,
        base_url=_optional_text(setting.get("base_url")),
        model=_optional_text(setting.get("model")),
    )


def byok_target(setting: ByokSetting, api_key: str) -> LlmTarget:
    """Where the org's decrypted key is sent (DESIGN §10.3.4)."""
    wire = byok_wire_format(setting.provider)
    name = setting.provider.lower()
    default_url = DEFAULT_BYOK_ENDPOINTS.get(name, PUBLIC_LLM_ENDPOINTS[wire])
    return LlmTarget(
        provider=wire,
        base_url=normalise_base_url(setting.base_url or default_url),
        api_key=api_key,
        model=setting.model or DEFAULT_BYOK_MODELS.get(name, DEFAULT_OPENAI_COMPATIBLE_MODEL),
        egress_guarded=True,  # the URL is the org's admins' (DESIGN §13)
    )


def _byok_choice(raw_setting: dict[str, Any] | None, settings: Settings) -> LlmTarget | None:
    """The org's own key when its setting counts; ``None`` otherwise.

    Raises ``InternalError`` when such a key cannot be decrypted (or no passphrase is
    configured): the registry answers 500 rather than bill the platform key in its place.
    """
    setting = parse_byok_setting(raw_setting)
    if setting is None:
        return None
    passphrase = read_configured_secret(settings.byok_encryption_key_secret_id)
    if passphrase is None:
        logger.error("BYOK key present but BYOK_ENCRYPTION_KEY_SECRET_ID is not configured")
        raise InternalError(BYOK_UNDECRYPTABLE)
    try:
        api_key = decrypt_api_key(setting.sealed_key, passphrase)
    except ByokDecryptionError as exc:
        logger.error("BYOK key cannot be decrypted", extra={"reason": str(exc), "provider": setting.provider})
        raise InternalError(BYOK_UNDECRYPTABLE) from None
    return byok_target(setting, api_key)


def choose_provider(org: OrgContext, settings: Settings) -> ProviderChoice:
    """BYOK when enabled, else the platform key on a paid (effective) plan within quota.

    Raises ``ResourceLimitExceeded`` when AI is disabled for the org or its quota is spent,
    and ``InternalError`` when an enabled BYOK key cannot be decrypted, or when a paid org
    should use the platform key but none is configured (Bedrock needs none: the function's IAM
    role reaches it).
    """
    byok = _byok_choice(org.byok_setting, settings)
    if byok is not None:
        return ProviderChoice(kind="byok", target=byok)
    plan = effective_plan(org.plan, org.subscription, org.read_at or datetime.now(UTC))
    if plan not in PAID_PLANS:
        details: dict[str, Any] = {"reason": "ai_disabled", "plan": plan}
        if plan != org.plan and org.subscription is not None:
            details["subscription_status"] = org.subscription.status
        raise ResourceLimitExceeded("AI analysis is not available on this plan without an enabled BYOK key", details)
    limit = monthly_token_limit(org.limits, org.quota_setting)
    if not quota_allows(limit, org.tokens_used_this_month):
        raise ResourceLimitExceeded(
            "Monthly AI token quota exhausted",
            {"reason": "quota_exhausted", "limit": limit, "used": org.tokens_used_this_month},
        )
    api_key = ""  # Bedrock: the function's IAM role, no key (DESIGN §12.2)
    if settings.platform_llm_provider != "bedrock":
        secret = read_configured_secret(settings.platform_llm_secret_id)
        if secret is None:
            raise InternalError("No platform LLM provider is configured (PLATFORM_LLM_SECRET_ID)")
        api_key = secret
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
