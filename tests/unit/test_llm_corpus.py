"""Recorded provider replies through the real reader and rule 9; the figures in docs/contract.md §12."""

from __future__ import annotations

from devtools.llm_corpus import DOC, END, START, corpus_rows, corpus_table

# name: (items offered, kept), or None when the reply holds no findings JSON (a 502).
EXPECTED: dict[str, tuple[int, int] | None] = {
    "openai_json_schema": (3, 2),  # a finding about an endpoint nobody asked about
    "openai_prose_fence": (3, 2),  # "Breaking"/"non-breaking" normalised; confidence "high" dropped
    "openai_refusal": None,
    "openai_length": (2, 2),  # the two findings complete before the cut
    "anthropic_tool_use": (3, 2),  # "post /orders" normalised, 1.3 clamped; "critical" dropped
    "anthropic_prose_fence": (2, 2),
    "anthropic_refusal": None,
    "anthropic_max_tokens": None,  # the incomplete tool call's input is empty
    "bedrock_tool_use": (4, 2),  # an extra key ignored; no description, and an unasked endpoint, dropped
    "bedrock_prose_fence": (3, 3),
    "bedrock_refusal": None,
    "bedrock_max_tokens": (1, 1),
}
TRUNCATED = {"openai_length", "anthropic_max_tokens", "bedrock_max_tokens"}


def test_every_recorded_reply_gives_the_expected_findings():
    rows = {row.name: row for row in corpus_rows()}
    assert set(rows) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        row = rows[name]
        assert (None if row.offered is None else (row.offered, row.kept)) == expected, name
        assert row.truncated == (name in TRUNCATED), name
        # A structured request's tool call / json_schema content is read as the structured answer.
        assert row.read_structured == (
            name
            in {"openai_json_schema", "openai_length", "anthropic_tool_use", "anthropic_max_tokens", "bedrock_tool_use"}
        ), name


def test_the_table_in_the_docs_is_current():
    """Rewrite it with ``python -m devtools.llm_corpus``."""
    text = DOC.read_text()
    assert START in text and END in text
    assert text.split(START, 1)[1].split(END, 1)[0].strip() == corpus_table(corpus_rows())
