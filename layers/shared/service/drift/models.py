"""Wire models of the contract-drift scorer (DESIGN §5)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from service.storable import StorableStr

MAX_ENDPOINTS_CONSIDERED = 25
DEFAULT_SAMPLES_PER_ENDPOINT = 3
SAMPLES_PER_ENDPOINT_BOUNDS = (1, 5)
# Input limits: generous for real callers, small enough that no request can make us do
# unbounded work. Anything larger is a 400 VALIDATION_FAILED.
MAX_ENDPOINTS_ACCEPTED = 500
MAX_SPEC_EXCERPT_CHARS = 1_000_000
MAX_PATH_CHARS = 512

Severity = Literal["breaking", "non_breaking", "cosmetic"]
ProviderKind = Literal["byok", "platform", "disabled"]


class Endpoint(BaseModel):
    """One ``METHOD /path`` pair the runner wants scored."""

    model_config = ConfigDict(extra="ignore")

    method: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z]+$", examples=["GET"])
    path: StorableStr = Field(min_length=1, max_length=MAX_PATH_CHARS, examples=["/users/{id}"])

    @property
    def key(self) -> tuple[str, str]:
        return (self.method.upper(), self.path)

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


class ScoreRequest(BaseModel):
    """Body of ``POST /api/v1/internal/contract-diff/score`` and of a direct invoke."""

    model_config = ConfigDict(extra="ignore")

    org_id: UUID
    workspace_id: UUID
    spec_excerpt: str = Field(max_length=MAX_SPEC_EXCERPT_CHARS)
    endpoints: list[Endpoint] = Field(max_length=MAX_ENDPOINTS_ACCEPTED)
    max_samples_per_endpoint: StrictInt | None = Field(
        default=None, description="Samples per endpoint; clamped to [1, 5], default 3."
    )

    def considered_endpoints(self) -> list[Endpoint]:
        """The first 25 distinct (upper method, path) pairs, in request order (DESIGN §5.3-4)."""
        seen: dict[tuple[str, str], Endpoint] = {}
        for endpoint in self.endpoints:
            if endpoint.key not in seen:
                seen[endpoint.key] = Endpoint(method=endpoint.method.upper(), path=endpoint.path)
            if len(seen) == MAX_ENDPOINTS_CONSIDERED:
                break
        return list(seen.values())

    def samples_per_endpoint(self) -> int:
        low, high = SAMPLES_PER_ENDPOINT_BOUNDS
        wanted = self.max_samples_per_endpoint
        return DEFAULT_SAMPLES_PER_ENDPOINT if wanted is None else max(low, min(high, wanted))


class Finding(BaseModel):
    severity: Severity
    endpoint: str = Field(description='"METHOD /path"')
    description: str
    confidence: float = Field(ge=0.0, le=1.0)
    rationale: str


class ScoreReply(BaseModel):
    findings: list[Finding]
    tokens_used: int
    provider: ProviderKind
    no_traffic: bool
    model: str | None = None
    endpoints_considered: int = 0
    samples_used: int = 0

    @classmethod
    def nothing_to_score(cls, endpoints_considered: int = 0) -> ScoreReply:
        """DESIGN §5 rules 2 and 5: no endpoints, or no traffic for any of them."""
        return cls(
            findings=[],
            tokens_used=0,
            provider="disabled",
            no_traffic=True,
            endpoints_considered=endpoints_considered,
        )


class ErrorReply(BaseModel):
    """The HTTP error envelope of DESIGN §5."""

    error: str
    error_code: str
    status: int
    request_id: str | None
    details: dict[str, object] | None = None
