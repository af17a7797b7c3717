"""The contract-drift second pass, in the order DESIGN §5 rule 6 fixes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from aws_lambda_powertools.metrics import MetricUnit

from service.budget import REPLY_RESERVE_MS, BudgetGuard
from service.config import get_settings
from service.drift.audit import AuditTrail
from service.drift.findings import FINDINGS_OUTPUT, NoJsonFound, read_findings
from service.drift.models import Endpoint, ScoreReply, ScoreRequest
from service.drift.prompt import SPEC_BUDGET_CHARS, Prompt, build_prompt
from service.drift.providers import ProviderChoice, choose_provider
from service.drift.repository import DriftRepository, month_start
from service.drift.spec.cache import parse_document
from service.drift.spec.document import OpenApiDocument
from service.drift.spec.slicing import SpecSlice
from service.drift.spec.source import SpecText
from service.errors import DatabaseError, InvalidRequest, ResourceLimitExceeded, UpstreamError, UpstreamTimeout
from service.llm import MAX_OUTPUT_TOKENS, LlmClient
from service.observability import logger, metrics, tracer

# Without a Lambda deadline (tests, scripts) the LLM gets this long.
DEFAULT_DEADLINE_MS = 30_000.0
# Kept back from the remaining time for metering and the reply after the LLM answers.
AFTER_LLM_RESERVE_MS = REPLY_RESERVE_MS + 250
RESERVATION_CHARS_PER_TOKEN = 3
# A reservation outlives its call's deadline by this much before it stops counting (crash case).
RESERVATION_GRACE_SECONDS = 60.0


def estimated_tokens(prompt: Prompt) -> int:
    """An upper estimate of a call's tokens: about 3 characters a token for the prompt
    (tokenizers average nearer 4 on prose and JSON), plus the whole output allowance."""
    return prompt.size_chars // RESERVATION_CHARS_PER_TOKEN + MAX_OUTPUT_TOKENS


class DriftScorer:
    """Samples traffic, asks the org's LLM, returns findings; meters platform tokens."""

    def __init__(self, repository: DriftRepository, llm: LlmClient, audit: AuditTrail) -> None:
        self._repository = repository
        self._llm = llm
        self._audit = audit

    def _reserve_quota(
        self,
        choice: ProviderChoice,
        request: ScoreRequest,
        period: date,
        prompt: Prompt,
        request_id: str,
        wall_ms: float,
    ) -> bool:
        """Hold the call's estimated tokens against the month's quota (platform calls with a limit).

        Refused (403) when the calls already in flight would take the org to its limit: a burst
        at the boundary overshoots by at most about one call, not by every call admitted before
        the first charge lands.
        """
        limit = choice.monthly_limit
        if choice.kind != "platform" or limit is None or limit < 0:
            return False
        admitted = self._repository.reserve_platform_tokens(
            request_id,
            request.org_id,
            period,
            estimated_tokens(prompt),
            limit,
            ttl_seconds=wall_ms / 1000.0 + RESERVATION_GRACE_SECONDS,
        )
        if not admitted:
            raise ResourceLimitExceeded(
                "Monthly AI token quota exhausted (calls in flight included)",
                {"reason": "quota_exhausted", "limit": limit, "in_flight": True},
            )
        return True

    def _release_quietly(self, request_id: str) -> None:
        """Give the reservation back; if that fails too, it expires on its own."""
        try:
            self._repository.release_reservation(request_id)
        except DatabaseError:
            logger.warning("Quota reservation not released; it will expire", extra={"request_id": request_id})

    @tracer.capture_method
    def score(
        self, request: ScoreRequest, spec: SpecText, *, remaining_ms: float | None, request_id: str
    ) -> ScoreReply:
        """DESIGN §5 rule 6's order; ``spec`` is the request's spec text, already read (§7.2)."""
        endpoints = request.considered_endpoints()
        if not endpoints:
            metrics.add_metric(name="NoTraffic", unit=MetricUnit.Count, value=1)
            return ScoreReply.nothing_to_score()

        period = month_start(datetime.now(UTC).date())
        org = self._repository.org_context(request.org_id, request.workspace_id, period)
        if org is None:
            raise InvalidRequest("Organization not found")
        if not org.workspace_belongs:
            raise InvalidRequest("Workspace not found")

        document = parse_document(spec.text)
        captures = self._repository.recent_samples(
            request.workspace_id,
            endpoints,
            request.samples_per_endpoint(),
            document.declared_paths() if document is not None else None,  # candidates (DESIGN §7.1)
        )
        contract = self._contract(document, spec, endpoints)
        if not captures:
            metrics.add_metric(name="NoTraffic", unit=MetricUnit.Count, value=1)
            return ScoreReply.nothing_to_score(len(endpoints)).model_copy(
                update={"endpoints_not_in_contract": contract.not_in_contract}
            )

        choice = choose_provider(org, get_settings())
        prompt = build_prompt(contract.text, endpoints, captures, not_in_contract=contract.not_in_contract)
        wall_ms = (remaining_ms if remaining_ms is not None else DEFAULT_DEADLINE_MS) - AFTER_LLM_RESERVE_MS
        reserved = self._reserve_quota(choice, request, period, prompt, request_id, wall_ms)
        guard = BudgetGuard.start("llm", soft_ms=wall_ms, hard_ms=wall_ms)
        logger.info(
            "Calling LLM",
            extra={
                "provider": choice.kind,
                "model": choice.target.model,
                "prompt_chars": prompt.size_chars,
                "wall_ms": wall_ms,
            },
        )
        settled = False
        try:
            completion = self._llm.complete(choice.target, prompt.system, prompt.user, guard, FINDINGS_OUTPUT)
            # The provider's tokens are spent whatever the reply holds: metered and audited
            # before it is parsed, so a reply without findings JSON is still paid for (§10.3.6).
            if choice.kind == "platform" and completion.tokens_used > 0:
                self._repository.meter_platform_tokens(request_id, request.org_id, period, completion.tokens_used)
                settled = True
            self._audit.record_completion(request.org_id, choice.kind, completion)
            answer = read_findings(completion.text, {e.label for e in endpoints})
            findings = answer.findings
        except NoJsonFound:
            metrics.add_metric(name="LlmFailures", unit=MetricUnit.Count, value=1)
            raise UpstreamError("LLM reply held no findings JSON") from None
        except (UpstreamError, UpstreamTimeout):
            metrics.add_metric(name="LlmFailures", unit=MetricUnit.Count, value=1)
            raise
        finally:
            if reserved and not settled:
                self._release_quietly(request_id)

        metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(findings))
        metrics.add_metric(name="FindingsDropped", unit=MetricUnit.Count, value=answer.dropped)
        logger.info(
            "LLM answered",
            extra={
                "structured": completion.structured,
                "truncated": completion.truncated,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
                "findings_offered": answer.offered,
                "findings_kept": len(findings),
            },
        )
        metrics.add_metric(name="TokensUsed", unit=MetricUnit.Count, value=completion.tokens_used)
        return ScoreReply(
            findings=findings,
            tokens_used=completion.tokens_used,
            provider=choice.kind,
            no_traffic=False,
            model=completion.model,
            endpoints_considered=len(endpoints),
            samples_used=len(captures),
            endpoints_not_in_contract=contract.not_in_contract,
            truncated=completion.truncated,
        )

    @staticmethod
    def _contract(document: OpenApiDocument | None, spec: SpecText, endpoints: list[Endpoint]) -> SpecSlice:
        """The prompt's contract section: the document's slice, or the raw text (cut by the prompt)."""
        if document is None:
            return SpecSlice(text=spec.text, not_in_contract=[], dropped=[])
        return document.slice(endpoints, SPEC_BUDGET_CHARS)  # logs what budget pressure dropped
