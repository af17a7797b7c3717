"""The recorded provider replies of ``tests/data/llm_replies/`` through the real reader and parser.

Each file holds one reply in its provider's documented shape (structured output, prose with a
fence, a refusal, a truncated stop reason) and whether it answered a structured request. Each is
read by its wire format (:mod:`service.llm`) and then by §5 rule 9 (:mod:`service.drift.findings`),
as the scorer does. ``python -m devtools.llm_corpus`` rewrites the table in docs/contract.md §12;
tests/unit/test_llm_corpus.py fails when that table is stale.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from devtools.handlers import ROOT
from service.drift.findings import FINDINGS_OUTPUT, NoJsonFound, read_findings
from service.llm import WIRE_FORMATS

CORPUS_DIR = ROOT / "tests" / "data" / "llm_replies"
DOC = ROOT / "docs" / "contract.md"
START, END = "<!-- llm-corpus:start -->", "<!-- llm-corpus:end -->"
STOP_KEYS = ("stopReason", "stop_reason")


@dataclass(frozen=True)
class CorpusRow:
    name: str
    provider: str
    shape: str
    structured_request: bool
    read_structured: bool
    truncated: bool
    offered: int | None  # None: no findings JSON at all (the call fails with 502)
    kept: int

    @property
    def dropped(self) -> int:
        return 0 if self.offered is None else self.offered - self.kept


def run_reply(path: Path) -> CorpusRow:
    recorded = json.loads(path.read_text())
    wire = WIRE_FORMATS[recorded["provider"]]
    output = FINDINGS_OUTPUT if recorded["asked_structured"] else None
    reply = wire.read_reply(recorded["reply"], output)
    try:
        answer = read_findings(reply.text, set(recorded["endpoints_asked"]))
        offered, kept = answer.offered, len(answer.findings)
    except NoJsonFound:
        offered, kept = None, 0
    return CorpusRow(
        name=path.stem,
        provider=recorded["provider"],
        shape=recorded["shape"],
        structured_request=recorded["asked_structured"],
        read_structured=reply.structured,
        truncated=reply.truncated,
        offered=offered,
        kept=kept,
    )


def corpus_rows() -> list[CorpusRow]:
    return [run_reply(path) for path in sorted(CORPUS_DIR.glob("*.json"))]


def corpus_table(rows: list[CorpusRow]) -> str:
    lines = [
        "| reply | shape | read as | items | kept | dropped | outcome |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        read_as = "structured" if row.read_structured else "text"
        if row.truncated:
            read_as += ", truncated"
        outcome = "502: no findings JSON" if row.offered is None else "200"
        items = "–" if row.offered is None else str(row.offered)
        lines.append(f"| `{row.name}` | {row.shape} | {read_as} | {items} | {row.kept} | {row.dropped} | {outcome} |")
    kept = sum(row.kept for row in rows)
    dropped = sum(row.dropped for row in rows)
    failed = sum(row.offered is None for row in rows)
    lines.append(f"| **{len(rows)} replies** | | | {kept + dropped} | {kept} | {dropped} | {failed} × 502 |")
    return "\n".join(lines)


def render_doc(text: str, table: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"{DOC} has no {START} marker")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    table = corpus_table(corpus_rows())
    DOC.write_text(render_doc(DOC.read_text(), table))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
