"""Reading the prompts the fake LLM received: the per-prompt nonce, the fences, what lies outside."""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtools.fake_llm import RecordedRequest
from service.drift.prompt import ANSWER_LINE

_NONCE_IN_SYSTEM = re.compile(r'"<<<DATA-([0-9a-f]+) \.\.\."')
# Lines the prompt builder writes itself, outside any fence.
_OWN_LINES = (
    re.compile(r"^## The contract \(OpenAPI\)$"),
    re.compile(r"^## Endpoints and their captured traffic \(last 24 h, newest first\)$"),
    re.compile(r"^### [A-Z]+ \S.*$"),
    re.compile(r"^Sample \d+: status (-?\d+|None), at \S+$"),
    re.compile(r"^\(no traffic captured\)$"),
    re.compile(rf"^{re.escape(ANSWER_LINE)}$"),
    re.compile(r"^$"),
)


@dataclass
class FencedPrompt:
    """A user prompt split into what sits inside data fences and what the builder wrote around them."""

    nonce: str
    data: list[str]
    spec: str
    outside: str
    openings: int
    closings: int

    def outside_lines_not_ours(self) -> list[str]:
        return [line for line in self.outside.split("\n") if not any(p.match(line) for p in _OWN_LINES)]


def nonce_of(request: RecordedRequest) -> str:
    found = _NONCE_IN_SYSTEM.search(request.system_prompt)
    assert found, "the system prompt names no data fence"
    return found.group(1)


def split_prompt(request: RecordedRequest) -> FencedPrompt:
    """Fences are matched first-closer-wins, so data that closed its fence would spill outside."""
    nonce = nonce_of(request)
    user = request.user_prompt
    fence = re.compile(rf"<<<DATA-{nonce} (?:request|response) body\n(.*?)\nDATA-{nonce}>>>", re.DOTALL)
    spec = re.compile(rf"<<<SPEC-{nonce}\n(.*?)\nSPEC-{nonce}>>>", re.DOTALL)
    spec_match = spec.search(user)
    assert spec_match, "no spec fence"
    data = fence.findall(user)
    outside = fence.sub("", spec.sub("", user, count=1))
    return FencedPrompt(
        nonce=nonce,
        data=data,
        spec=spec_match.group(1),
        outside=outside,
        openings=user.count(f"<<<DATA-{nonce}"),
        closings=user.count(f"DATA-{nonce}>>>"),
    )
