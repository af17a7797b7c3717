"""Wire models of the contract-drift scorer (DESIGN §5)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from service.storable import StorableStr

MAX_ENDPOINTS_CONSIDERED = 25
DEFAULT_SAMPLES_PER_ENDPOINT = 3
SAMPLES_PER_ENDPOINT_BOUNDS = (1, 5)
# Input limits: generous for real callers, small enough that no request can make us do
# unbounded work. Anything larger is a 400 VALIDATION_FAILED.
MAX_ENDPOINTS_ACCEPTED = 500
# A whole OpenAPI document (DESIGN §7.2); Lambda's 6 MB synchronous payload limit binds first.
MAX_SPEC_EXCERPT_CHARS = 6_000_000
MAX_SPEC_S3_URI_CHARS = 1_100
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
    spec_excerpt: str | None = Field(
        default=None,
        max_length=MAX_SPEC_EXCERPT_CHARS,
        description="The contract: an OpenAPI 3.x / Swagger 2.0 document (JSON or YAML) or any excerpt of one. "
        "Exactly one of spec_excerpt and spec_s3_uri.",
    )
    spec_s3_uri: str | None = Field(
        default=None,
        max_length=MAX_SPEC_S3_URI_CHARS,
        pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+$",
        description="s3://bucket/key of the document, for specs too large to send inline (Step Functions "
        "passes at most 256 KiB between states). Exactly one of spec_excerpt and spec_s3_uri.",
        examples=["s3://my-specs/shop/openapi.yaml"],
    )
    endpoints: list[Endpoint] = Field(max_length=MAX_ENDPOINTS_ACCEPTED)
    max_samples_per_endpoint: StrictInt | None = Field(
        default=None, description="Samples per endpoint; clamped to [1, 5], default 3."
    )

    @model_validator(mode="after")
    def _exactly_one_spec(self) -> ScoreRequest:
        if (self.spec_excerpt is None) == (self.spec_s3_uri is None):
            raise ValueError("exactly one of spec_excerpt and spec_s3_uri is required")
        return self

    def considered_endpoints(self) -> list[Endpoint]:
        """The first 25 distinct endpoints in request order (DESIGN §5.3-4, §7.1): two paths equal up
        to their parameter names are one endpoint, spelled as it first came."""
        from service.drift.spec.paths import shape_of

        seen: dict[tuple[str, object], Endpoint] = {}
        for endpoint in self.endpoints:
            key = (endpoint.method.upper(), shape_of(endpoint.path))
            if key not in seen:
                seen[key] = Endpoint(method=endpoint.method.upper(), path=endpoint.path)
            if len(seen) == MAX_ENDPOINTS_CONSIDERED:
                break
        return list(seen.values())

    def samples_per_endpoint(self) -> int:
        low, high = SAMPLES_PER_ENDPOINT_BOUNDS
        wanted = self.max_samples_per_endpoint
        return DEFAULT_SAMPLES_PER_ENDPOINT if wanted is None else max(low, min(high, wanted))


# Also the source of the structured-output schema sent to the model (DESIGN §12.1,
# service.drift.findings.FINDINGS_SCHEMA): the docstring and descriptions are the model's guidance.
class Finding(BaseModel):
    """One contract drift seen in the captured traffic."""

    severity: Severity = Field(
        description='"breaking": a client written against the contract would fail; "non_breaking": '
        'the traffic adds what the contract lacks without breaking clients; "cosmetic": naming, '
        "formatting or documentation"
    )
    endpoint: str = Field(description='"METHOD /path": exactly one of the endpoints asked about')
    description: str = Field(description="What drifted, in one sentence")
    confidence: float = Field(ge=0.0, le=1.0, description="How sure the samples make it, from 0 to 1")
    rationale: str = Field(description="The evidence from the samples")


class ScoreReply(BaseModel):
    findings: list[Finding]
    tokens_used: int
    provider: ProviderKind
    no_traffic: bool
    model: str | None = None
    endpoints_considered: int = 0
    samples_used: int = 0
    endpoints_not_in_contract: list[str] = Field(
        default_factory=list,
        description='"METHOD /path" of considered endpoints the document does not declare (empty when the '
        "spec is not a parseable OpenAPI document)",
    )
    replayed: bool = Field(
        default=False, description="true when this is the stored reply of an identical earlier request"
    )
    truncated: bool = Field(
        default=False,
        description="true when the model stopped at its output limit: the findings are those complete before "
        "the cut, and more may exist",
    )

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
