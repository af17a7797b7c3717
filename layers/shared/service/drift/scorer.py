"""The contract-drift second pass, in the order DESIGN §5 rule 6 fixes."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from service.budget import REPLY_RESERVE_MS, BudgetGuard
from service.config import get_settings
from service.drift.findings import NoJsonFound, parse_findings
from service.drift.models import ScoreReply, ScoreRequest
from service.drift.prompt import build_prompt
from service.drift.providers import choose_provider
from service.drift.repository import DriftRepository, month_start
from service.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from service.llm import LlmClient
from service.observability import logger, metrics, tracer

# Without a Lambda deadline (tests, scripts) the LLM gets this long.
DEFAULT_DEADLINE_MS = 30_000.0
# Kept back from the remaining time for metering and the reply after the LLM answers.
AFTER_LLM_RESERVE_MS = REPLY_RESERVE_MS + 250


class DriftScorer:
    """Samples traffic, asks the org's LLM, returns findings; meters platform tokens."""

    def __init__(self, repository: DriftRepository, llm: LlmClient) -> None:
        self._repository = repository
        self._llm = llm

    @tracer.capture_method
    def score(self, request: ScoreRequest, *, remaining_ms: float | None, request_id: str) -> ScoreReply:
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

        captures = self._repository.recent_samples(request.workspace_id, endpoints, request.samples_per_endpoint())
        if not captures:
            metrics.add_metric(name="NoTraffic", unit=MetricUnit.Count, value=1)
            return ScoreReply.nothing_to_score(len(endpoints))

        choice = choose_provider(org, get_settings())
        prompt = build_prompt(request.spec_excerpt, endpoints, captures)
        wall_ms = (remaining_ms if remaining_ms is not None else DEFAULT_DEADLINE_MS) - AFTER_LLM_RESERVE_MS
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
        try:
            completion = self._llm.complete(choice.target, prompt.system, prompt.user, guard)
            findings = parse_findings(completion.text, {e.label for e in endpoints})
        except NoJsonFound:
            metrics.add_metric(name="LlmFailures", unit=MetricUnit.Count, value=1)
            raise UpstreamError("LLM reply held no findings JSON") from None
        except (UpstreamError, UpstreamTimeout):
            metrics.add_metric(name="LlmFailures", unit=MetricUnit.Count, value=1)
            raise

        if choice.kind == "platform" and completion.tokens_used > 0:
            self._repository.meter_platform_tokens(request_id, request.org_id, period, completion.tokens_used)
        metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(findings))
        metrics.add_metric(name="TokensUsed", unit=MetricUnit.Count, value=completion.tokens_used)
        return ScoreReply(
            findings=findings,
            tokens_used=completion.tokens_used,
            provider=choice.kind,
            no_traffic=False,
            model=completion.model,
            endpoints_considered=len(endpoints),
            samples_used=len(captures),
        )
