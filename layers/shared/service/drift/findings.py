"""The findings' wire schema (DESIGN §12.1), and validated findings out of an LLM's answer (§5 rule 9).

The schema asked for is derived from :class:`~service.drift.models.Finding`, so what is asked
for and what is validated cannot drift apart. Structured output is not a guarantee (a
compatible server may ignore it, a fallback call goes without it), so the answer is still read
leniently: the model may wrap its JSON in prose or code fences, invent severities, or talk about
endpoints nobody asked about: whatever parses and fits is kept, the rest dropped. Parsing
never raises, whatever the text.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from service.drift.models import Finding
from service.llm import StructuredOutput

MAX_TEXT_CHARS = 500_000
MAX_DECODE_ATTEMPTS = 200
MAX_FIELD_CHARS = 4_000
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_SEVERITY_WORDS = {"breaking": "breaking", "nonbreaking": "non_breaking", "cosmetic": "cosmetic"}


# An object at the top, because OpenAI's strict mode accepts nothing else there.
class FindingsAnswer(BaseModel):
    """Every contract drift found; an empty list when traffic and contract agree."""

    findings: list[Finding]


def strict_schema(node: Any, defs: dict[str, Any] | None = None) -> Any:
    """``node`` (a pydantic JSON schema) in the form OpenAI's strict mode accepts, which the other
    providers accept too: ``$ref`` inlined, titles dropped, and on every object
    ``additionalProperties: false`` with every property required."""
    if defs is None and isinstance(node, dict):
        defs = node.get("$defs", {})
    if isinstance(node, list):
        return [strict_schema(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return strict_schema((defs or {})[node["$ref"].rsplit("/", 1)[-1]], defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":
            out[key] = {name: strict_schema(sub, defs) for name, sub in value.items()}
        else:
            out[key] = strict_schema(value, defs)
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


FINDINGS_SCHEMA: dict[str, Any] = strict_schema(FindingsAnswer.model_json_schema())
FINDINGS_OUTPUT = StructuredOutput(
    name="drift_findings",
    tool_name="report_findings",
    description="Report the contract drift findings: every drift the samples show, or an empty list.",
    schema=FINDINGS_SCHEMA,
)


class NoJsonFound(ValueError):
    """The reply held no JSON array of findings at all."""


def _candidates(text: str) -> list[Any]:
    """JSON values found in ``text``: the whole, then fenced blocks, then embedded values."""
    found: list[Any] = []
    decoder = json.JSONDecoder()
    for chunk in [text, *(m.group(1) for m in _FENCE.finditer(text))]:
        try:
            found.append(json.loads(chunk))
            return found
        except ValueError:
            pass
    attempts = 0
    for match in re.finditer(r"[\[{]", text):
        attempts += 1
        if attempts > MAX_DECODE_ATTEMPTS:
            break
        try:
            value, _end = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
        if isinstance(value, list):
            break
    return found


def _as_item_list(value: Any) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        inner = value.get("findings")
        if isinstance(inner, list):
            return inner
    return None


def _lone_findings(values: list[Any]) -> list[Any] | None:
    """Finding-shaped objects standing alone: prose listing them one by one, or an array cut
    short by the output limit, whose complete items decode one at a time."""
    lone = [value for value in values if isinstance(value, dict) and "severity" in value]
    return lone or None


def normalise_endpoint(raw: str) -> str:
    """``" get   /users "`` → ``"GET /users"``."""
    method, _, path = raw.strip().partition(" ")
    return f"{method.upper()} {path.strip()}"


def _severity(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    return _SEVERITY_WORDS.get(re.sub(r"[\s_\-]", "", raw.lower()))


def _confidence(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else max(0.0, min(1.0, value))


def _text(raw: Any) -> str | None:
    return raw.strip()[:MAX_FIELD_CHARS] if isinstance(raw, str) and raw.strip() else None


def _finding(item: Any, allowed_endpoints: set[str]) -> Finding | None:
    if not isinstance(item, dict):
        return None
    severity = _severity(item.get("severity"))
    endpoint = normalise_endpoint(item["endpoint"]) if isinstance(item.get("endpoint"), str) else None
    description = _text(item.get("description"))
    confidence = _confidence(item.get("confidence"))
    if severity is None or endpoint not in allowed_endpoints or description is None or confidence is None:
        return None
    rationale = _text(item.get("rationale")) or ""
    return Finding(
        severity=severity,  # type: ignore[arg-type]  # narrowed by _SEVERITY_WORDS
        endpoint=endpoint,
        description=description,
        confidence=confidence,
        rationale=rationale,
    )


@dataclass(frozen=True)
class ReadFindings:
    """What an answer offered, and what of it survived rule 9."""

    findings: list[Finding]
    offered: int

    @property
    def dropped(self) -> int:
        return self.offered - len(self.findings)


def read_findings(text: str, allowed_endpoints: set[str]) -> ReadFindings:
    """Findings in ``text`` about ``allowed_endpoints`` ("METHOD /path"), with how many items it offered.

    Raises :class:`NoJsonFound` only when no JSON array (or ``{"findings": [...]}``) is there
    at all: that reply is a failed call, not an empty verdict.
    """
    items: list[Any] | None = None
    candidates = _candidates(text[:MAX_TEXT_CHARS] if isinstance(text, str) else "")
    for value in candidates:
        items = _as_item_list(value)
        if items is not None:
            break
    if items is None:
        items = _lone_findings(candidates)
    if items is None:
        raise NoJsonFound("no JSON findings in the model's reply")
    findings = [f for f in (_finding(item, allowed_endpoints) for item in items) if f is not None]
    return ReadFindings(findings=findings, offered=len(items))


def parse_findings(text: str, allowed_endpoints: set[str]) -> list[Finding]:
    """:func:`read_findings`' findings only."""
    return read_findings(text, allowed_endpoints).findings
