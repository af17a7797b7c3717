"""Render ``docs/reliability.md`` from the figures the reliability tests wrote.

    .venv/bin/pytest tests/reliability            # writes .local/reliability/figures.json
    .venv/bin/python -m tests.reliability.report  # writes docs/reliability.md from it

Every figure in the document comes from that file; nothing here is typed in by hand except
what each figure means and which test produced it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIGURES_PATH = ROOT / ".local" / "reliability" / "figures.json"
DOC_PATH = ROOT / "docs" / "reliability.md"
PYTEST = ".venv/bin/pytest"


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    test: str
    meaning: str


CASES: list[tuple[str, list[Section]]] = [
    (
        "1. Auth: wrong credentials on both routes",
        [
            Section(
                "auth_drift",
                "Contract-drift route",
                "test_auth_abuse.py::test_no_wrong_credential_is_accepted_and_every_refusal_is_the_missing_token_reply[drift]",
                "Generated wrong Authorization values (prefixes, suffixes, substitutions, case, whitespace, "
                "homoglyphs, invisible characters, Bearer variants, other schemes, very long values) plus the right "
                "token under other headers, a cookie and the query string. `replies_differing_from_missing_token` "
                "compares the whole proxy reply (status, headers, body) with the no-token reply for the same "
                "requestId. `database_queries` and `llm_requests` count what the refused calls reached "
                "(Database.query calls, requests at the fake LLM). Secrets Manager calls were counted in botocore "
                "and in moto's request log during the flood (default settings: 5 s refresh interval).",
            ),
            Section(
                "auth_traverse",
                "traverse_answer route",
                "test_auth_abuse.py::test_no_wrong_credential_is_accepted_and_every_refusal_is_the_missing_token_reply[traverse]",
                "Same generator, same checks, gate on.",
            ),
            Section(
                "auth_constant_time",
                "Constant-time comparison",
                "test_auth_abuse.py -k 'compare_digest or compared_whole or work_done or nothing_but'",
                "No wall-clock figures: forcing `hmac.compare_digest`'s verdict flips the outcome both ways "
                "(so it alone decides); every wrong token is passed to it whole against the whole expected "
                "`Bearer <token>` (one call per token when no re-read is due); the number of Python lines "
                "`verify` runs is the same whether 0 or 29 leading characters are right; the verifier's AST has no "
                "==, in, slicing, len() or startswith on the header or the secret.",
            ),
        ],
    ),
    (
        "2. Malformed input",
        [
            Section(
                "malformed_drift",
                "Contract-drift function",
                "test_malformed_input.py",
                "API Gateway events with the right token (hand-written classics + hypothesis: invalid JSON, wrong "
                "types, missing fields, 2 MB strings, nesting to 500 levels, base64 and broken base64 bodies, "
                "content types, unknown methods and paths) and direct payloads (non-objects, generated objects). "
                "Every 4xx checked against the §5 envelope and its request_id; no traceback text. Direct invokes: "
                "outcome by exception class (`reply` = a normal reply).",
            ),
            Section(
                "malformed_traverse",
                "traverse_answer function",
                "test_malformed_input.py",
                "Same, every 4xx checked for `schema: mnem.v1.err`.",
            ),
            Section(
                "schemathesis",
                "schemathesis against the local API",
                "test_schemathesis_local_api.py::test_schemathesis_finds_no_server_error_on_either_route",
                "The schemathesis v4 CLI against `GET /openapi.json` of the in-process local API (examples, "
                "coverage and fuzzing phases). The only server errors are the local API's own 501 for TRACE, sent "
                "by the coverage phase (a devtools bug, pinned as xfail).",
            ),
        ],
    ),
    (
        "3. Database faults",
        [
            Section(
                "db_connection_killed",
                "Connection killed before every warm invoke",
                "test_db_faults.py::test_connection_killed_between_every_warm_invoke_of_both_functions",
                "pg_terminate_backend on the service's connection before each of the calls, alternating drift "
                "and traverse in one warm process.",
            ),
            Section(
                "db_down",
                "Database down",
                "test_db_faults.py::test_database_down_is_a_quick_500_for_both_functions_and_nothing_is_metered",
                "DATABASE_URL at a missing unix socket and at a TCP port nobody listens on; reply time in ms for a "
                "Lambda with 3 s left; 500 DATABASE_ERROR over HTTP, DatabaseError on direct invoke; no LLM call, "
                "nothing metered.",
            ),
            Section(
                "db_lost_after_llm",
                "Database lost while the LLM answers",
                "test_db_faults.py::test_database_lost_while_the_llm_answers_charges_nothing_and_says_so",
                "The connection is killed and the address starts refusing while the LLM is answering: the reply "
                "is 500 DATABASE_ERROR and nothing is charged (the provider's tokens are spent, unbilled).",
            ),
            Section(
                "db_hung",
                "Database that accepts and never answers",
                "test_db_faults.py::test_hung_database_does_not_hold_traverse_past_its_wall",
                "traverse with budget_ms 500 and 3 s left must answer within the wall + 500 ms (measured: ~520 ms "
                "once warm). Before 6ab9f7d it answered after ~3.3 s (found by this test; fixed).",
            ),
        ],
    ),
    (
        "4. LLM faults",
        [
            Section(
                "llm_faults",
                "Scripted provider faults (drift over HTTP, 3 s Lambda)",
                "test_llm_faults.py::test_llm_fault_scenario",
                "Attempts are the requests the fake provider received (at most 3). `provider_completed_tokens` "
                "counts completions the provider finished with status 200; `tokens_metered` is usage_counters "
                "after the call. Also covered in tests/integration/test_drift_faults.py: 500 x5, 429 + Retry-After, "
                "Retry-After beyond the time left, slow reply, 401, truncated JSON, non-JSON, no JSON in the text, "
                "3 MB reply, connection refused.",
            ),
            Section(
                "llm_late_completion",
                "Reply slower than the time left",
                "test_llm_faults.py::test_provider_finishing_after_we_gave_up_is_not_metered",
                "504 inside the Lambda's time; the provider finishes afterwards and the org is charged nothing.",
            ),
        ],
    ),
    (
        "5. Concurrency and the quota boundary",
        [
            Section(
                "quota_boundary_slow_llm",
                "20 concurrent calls, 1 token of quota left, LLM answering in 0.5 s",
                "test_quota_boundary.py::test_quota_overshoot_under_a_concurrent_burst_is_bounded[slow-llm]",
                "Every call reserves an estimate of its tokens before calling the LLM, under the org's lock; with "
                "1 token of headroom the first reservation fills it, so exactly one call is admitted and the "
                "overshoot is that call's tokens less the headroom (the check-then-charge design this replaced "
                "let all 20 in: overshoot 9,759 tokens in the same test).",
            ),
            Section(
                "quota_boundary_fast_llm",
                "20 concurrent calls, 1 token of quota left, LLM answering at once",
                "test_quota_boundary.py::test_quota_overshoot_under_a_concurrent_burst_is_bounded[fast-llm]",
                "Same bound when charges land during the burst: one call admitted.",
            ),
            Section(
                "quota_sequential",
                "One call at a time",
                "test_quota_boundary.py::test_calls_one_at_a_time_stop_at_the_limit",
                "Sequential overshoot is below one call's tokens.",
            ),
        ],
    ),
    (
        "6. Secret rotation while warm (short windows: cache 1 s, refresh interval 0.25 s)",
        [
            Section(
                "rotation_drift",
                "Rotation seen by the drift function",
                "test_secret_rotation.py::test_new_token_works_at_once_and_the_old_one_stops[drift]",
                "Same warm process (the Powertools provider object is unchanged): no cold start.",
            ),
            Section(
                "rotation_traverse",
                "Rotation seen by traverse_answer",
                "test_secret_rotation.py::test_new_token_works_at_once_and_the_old_one_stops[traverse]",
                "As above.",
            ),
            Section(
                "rotation_old_token_window",
                "Old token after rotation when nobody presents the new one",
                "test_secret_rotation.py::test_old_token_stops_once_the_cache_expires_even_if_nobody_uses_the_new_one",
                "The old token lives as long as the cached value: INTERNAL_TOKEN_CACHE_SECONDS (60 s by default).",
            ),
            Section(
                "rotation_new_token_gap",
                "New token right after a wrong token spent the forced re-read",
                "test_secret_rotation.py::test_new_token_can_be_refused_until_the_refresh_interval_passes",
                "The new token is refused until the refresh interval passes (5 s by default).",
            ),
            Section(
                "flood_drift",
                "Wrong-token flood, drift",
                "test_secret_rotation.py::test_flood_of_wrong_tokens_is_a_trickle_of_secrets_manager_calls[drift]",
                "`bound` = elapsed/interval + 1 + elapsed/cache + 1.",
            ),
            Section(
                "flood_traverse",
                "Wrong-token flood, traverse",
                "test_secret_rotation.py::test_flood_of_wrong_tokens_is_a_trickle_of_secrets_manager_calls[traverse]",
                "As above.",
            ),
        ],
    ),
    (
        "7. Tenant isolation",
        [
            Section(
                "tenant_isolation",
                "Property over random organizations, workspaces and captures",
                "test_tenant_isolation.py::test_no_capture_of_another_workspace_reaches_a_prompt",
                "Each capture carries its workspace id; every tag in every prompt the fake LLM received is checked "
                "(sibling workspaces of the same org count as foreign). A workspace of another org is refused "
                "(direct and HTTP) with no LLM call.",
            ),
            Section(
                "traverse_graph_isolation",
                "traverse_answer graphs",
                "test_tenant_isolation.py::test_traverse_never_returns_a_node_of_another_graph",
                "Same node id and words in three graphs: no reply names a node of another graph.",
            ),
        ],
    ),
    (
        "8. Prompt injection",
        [
            Section(
                "prompt_injection",
                "Hostile captured bodies in the prompts the LLM received",
                "test_prompt_injection.py::test_hostile_bodies_stay_inside_their_fences",
                "Bodies built from fence closers, fake headings, fake samples, instructions, CR/LF, U+2028, control "
                "characters, stored plain or base64; each must sit whole inside its own fence and nothing foreign "
                "may appear outside the fences.",
            ),
            Section(
                "prompt_nonces",
                "Fresh nonce per prompt",
                "test_prompt_injection.py::test_every_prompt_has_its_own_nonce",
                "",
            ),
        ],
    ),
    (
        "9. Idempotent scoring under a retry burst",
        [
            Section(
                "idempotent_burst",
                "20 identical direct invokes at once",
                "test_idempotent_burst.py",
                "A team org (platform key), one endpoint with traffic; 20 threads released together, each a direct "
                "invoke with its own Lambda request id, each retrying `RequestInProgress` every 0.1 s as the state "
                "machine does. `llm_requests` counts requests at the fake LLM, `metered_charges` rows in "
                "`usage_ledger`; `first_attempt` is how each invoke's first try ended. Idempotency records on "
                "moto's DynamoDB. The last row is the same burst with `IDEMPOTENCY_TTL_SECONDS=0`.",
            ),
        ],
    ),
    (
        "10. Hostile OpenAPI documents",
        [
            Section(
                "hostile_documents",
                "parse_document + slice on documents built to hurt",
                "test_hostile_documents.py",
                "Each document parsed and sliced (25 endpoints or fewer, `SPEC_BUDGET_CHARS`) on a cold cache, "
                "timed, then again under tracemalloc for `peak_mib`. Every path and operationId carries a marker, "
                "and the slice is scanned for markers that were not asked for (none found in any case). YAML "
                "bombs must be refused (`parsed` false): billion laughs, a 2^40 alias bomb inside an operation, a "
                "recursive alias, and 1,000,000 levels of nesting, which crash the process in libyaml's C "
                "composer (found while writing this test: the parser now counts nesting on libyaml's event "
                "stream first and refuses more than 500 levels). The ref ring is followed breadth first only as "
                "deep as the budget can hold; 100,001 paths are indexed in a trie expanded on demand; templates "
                "are matched per segment in linear time, without regexes (24 adjacent parameters against a "
                "400-character segment).",
            ),
        ],
    ),
    (
        "11. Hostile paths and templates in the sampler",
        [
            Section(
                "hostile_paths_metacharacters",
                "Paths full of regex metacharacters",
                "test_hostile_paths.py::test_paths_full_of_regex_metacharacters",
                "Captured and requested paths made of `.`, `+`, `(`, `$`, `*`, `\\`, `[`, `^`, `|`, `?` and braces, "
                "sampled through the one SQL statement and checked capture by capture against the pure-Python "
                "owner (`paths.owner_of`): `foreign_samples` counts samples given to an endpoint that does not own "
                "them. The same endpoints through the HTTP handler answer `http_status`.",
            ),
            Section(
                "hostile_paths_match_everything",
                "Templates that match everything (`/{a}`)",
                "test_hostile_paths.py::test_templates_that_match_everything",
                "`/{a}`, `/{a}/{b}`, `{a}` and `/{x}{y}` beside literal `/me` over 6,004 captured paths, with "
                "declared `/p7` and `/{a}/q`: each capture goes to its most specific candidate only.",
            ),
            Section(
                "hostile_paths_100k_document",
                "A document declaring 100,000 paths",
                "test_hostile_paths.py::test_a_document_declaring_100k_paths",
                "90,000 literal and 10,000 templated declared paths as candidates of five wide templates: "
                "`literal_paths_excluded` literal candidates are skipped by a hashed NOT IN, templated rivals "
                "go into each pattern's lookahead (coarsened past 20,000 characters: an endpoint may then lose "
                "samples, never gain foreign ones). Bounded by the Lambda's 29 s, not by a speed target.",
            ),
        ],
    ),
    (
        "12. Audit hash chain under concurrency",
        [
            Section(
                "audit_chain_burst",
                "20 concurrent platform calls of one org",
                "test_audit_chain_burst.py",
                "A team org (unlimited), one endpoint with traffic, 20 direct invokes released together; each "
                "call's audit append is held at a barrier until all 20 reach it, so the appends hit the database "
                "together even when the calls drift apart on a busy machine. `empty`: the org has no audit row yet "
                "(nothing for `FOR UPDATE` to lock, so the per-org transaction-scoped advisory lock alone "
                "serializes the first appends); `registry-started`: three rows written first the registry's way "
                "(head read with `FOR UPDATE`, hash computed in Python). `hashes_recomputed` rows were checked by "
                "the test's own verifier (no service code): each `entry_hash` recomputed from the canonical form, "
                "each `prev_hash` equal to the previous row's `entry_hash`; `forks` counts rows chaining to a "
                "predecessor another row already chains to. Target: 20 new rows, 0 forks. The control rows are "
                "the same bursts with only the advisory lock taken away: `FOR UPDATE` alone forks the chain too, "
                "since a waiter released by the head's lock goes on with the head it found (READ COMMITTED), not "
                "the row just added.",
            ),
        ],
    ),
    (
        "13. Connections at Lambda scale (R11): 200 clients, a pool of 5",
        [
            Section(
                "pooled_connections",
                "Through PgBouncer (transaction mode) and straight to PostgreSQL",
                "test_pooled_connections.py",
                "200 threads released together, each holding its own database connection as a warm Lambda instance "
                "does, each making one scoring call (a direct invoke, team org, platform key, one endpoint with "
                "traffic) and one traverse call (HTTP, 2 hops), then waiting for all the others before closing. "
                "`pgbouncer`: through PgBouncer 1.18 with `pool_mode = transaction` and `default_pool_size = 5` "
                "(5 server connections for 200 clients). `direct`: the same load on the server itself, whose "
                "`max_connections` is below the client count: the clients past it are refused ('too many clients', "
                "500 `DATABASE_ERROR`, nothing charged). `metering_exact`: `usage_counters` equals the sum of the "
                "`tokens_used` of the successful replies.",
            ),
        ],
    ),
    (
        "14. BYOK base URLs that point inside the network",
        [
            Section(
                "byok_egress_spellings",
                "Every spelling of loopback as a BYOK host",
                "test_byok_egress.py",
                "A pro org (it has a platform key too) whose enabled BYOK key points at each spelling of loopback "
                "listed in the next table, `BYOK_PRIVATE_NETWORKS_ALLOWED` empty. `refused`: 400 INVALID_REQUEST "
                "with `details.reason` `byok_base_url_not_allowed` (direct invoke: `InvalidRequest`). "
                "`connections_accepted`: connections accepted by real listeners on 127.0.0.1, 127.0.0.2, "
                "127.1.2.3 and ::1, on the port every URL named (the kernel's backlog drained too); "
                "`tcp_connects_attempted`: TCP connections httpcore was asked to open; `llm_requests`: requests "
                "at the fake LLM (no platform call in the refused one's place). Target: 0 connections. DNS "
                "rebinding, redirects and the allow-list per address: tests/integration/test_byok_egress.py.",
            ),
            Section("byok_egress_spelling_list", "The spellings tried", "test_byok_egress.py", ""),
        ],
    ),
]

FIXED = "fixed in 6ab9f7d: now a plain test"
FIXED_PINNED = "fixed in 461262f: now a plain test"
FIXED_MATCHER = "fixed in 8fde88d: now a plain test"
BUGS = [
    (
        "Lone surrogate in the Authorization header crashes the token check",
        "test_auth_abuse.py::test_header_with_a_lone_surrogate_is_refused_not_crashed",
        FIXED_PINNED,
        "`InternalTokenVerifier._matches` calls `header.encode()`; an event whose header holds `\\ud800` raises "
        "UnicodeEncodeError out of the handler (a Lambda error, 5xx at API Gateway) instead of the 400.",
    ),
    (
        "Half-formed API Gateway events escape untyped",
        "test_malformed_input.py::test_broken_http_shaped_event_is_a_typed_refusal",
        FIXED_PINNED,
        "requestContext.http null or empty, rawPath not a string, a header name that is not a string: "
        "TypeError/KeyError/AttributeError out of the handler. Only a direct (IAM) caller can send these. "
        "(Non-string bodies and a list of headers, 500/AttributeError before, were fixed in 6ab9f7d.)",
    ),
    (
        "NUL in a drift endpoint path reaches PostgreSQL",
        "test_malformed_input.py::test_nul_character_is_a_400",
        FIXED_PINNED,
        "A path holding U+0000 passes validation; Postgres refuses it and the request ends 500 DATABASE_ERROR / "
        "DatabaseError. (traverse's text and graph had the same bug, fixed in 6ab9f7d.)",
    ),
    (
        "Nonce stripping is single-pass",
        "test_prompt_injection.py::test_nonce_nested_inside_itself_cannot_close_the_fence",
        FIXED_PINNED,
        "`_neutralise` does one `replace(nonce, '')`; data holding the nonce nested in itself reassembles it and "
        "closes its fence. Needs the secret 64-bit per-prompt nonce, so not exploitable blind; defence in depth.",
    ),
    (
        "Local API answers TRACE/unknown verbs with 501 HTML",
        "test_schemathesis_local_api.py::test_local_api_answers_an_unlisted_method_without_a_5xx",
        FIXED_PINNED,
        "devtools/local_api.py has no handler for them, so http.server's 501 page goes out (API Gateway: 404 JSON).",
    ),
    (
        "Drift's sample count is a lax integer",
        "test_schemathesis_local_api.py::test_drift_refuses_a_non_integer_sample_count",
        FIXED_PINNED,
        '`max_samples_per_endpoint`: false, true, "3" and 2.0 are accepted though the OpenAPI says integer.',
    ),
    (
        "Deeply nested JSON was a 500",
        "test_malformed_input.py::test_deeply_nested_json_is_a_400",
        FIXED,
        "A body nested about 1000 levels deep made json.loads raise RecursionError: 500 INTERNAL_ERROR.",
    ),
    (
        "Drift answered 500 to a non-JSON content type",
        "test_malformed_input.py::test_unsupported_content_type_is_a_400",
        FIXED,
        "text/plain, APPLICATION/JSON, application/octet-stream, application/xml, text/json (Powertools' "
        "RequestUnsupportedContentType into the catch-all); multipart/form-data without a boundary on both routes.",
    ),
    (
        "A hung database held traverse past its wall",
        "test_db_faults.py::test_hung_database_does_not_hold_traverse_past_its_wall",
        FIXED,
        "A server that accepts TCP and never answers made a budget_ms=500 call with 3 s left answer after ~3.3 s.",
    ),
    (
        "Sampler templates backtrack exponentially against long declared paths",
        "test_hostile_documents.py::test_sampler_plan_with_adjacent_parameters_against_a_long_declared_path_is_quick",
        FIXED_MATCHER,
        "`service.drift.spec.paths.Template.matches` was a Python regex: a requested `/{a}{b}{c}{d}{e}!` planned "
        "against a document declaring a 300-character literal path took 75 s in `plan_endpoints` (6 parameters: "
        "minutes). Templates now match segment by segment in linear time (`paths.segment_matches`, shared with the "
        "slicer).",
    ),
]


QUOTA_NOTE = [
    "### What the quota can promise",
    "",
    "A platform call is admitted only while the month's usage plus the reservations of the calls in flight",
    "is below the limit (DESIGN §5.7's rule, with calls in flight counted); it reserves an upper estimate of",
    "its tokens (prompt characters / 3 + the 2048-token output allowance) in `usage_reservations`, under a",
    "per-org advisory lock. The charge replaces the reservation in one idempotent statement when the call",
    "completes; a failed call releases it; one left by a crashed invocation stops counting when it expires",
    "(its deadline + 60 s). So a burst at the boundary overshoots by at most one call's tokens, as long as",
    "the estimate is an upper bound (each call's real tokens above its estimate add to that). Unlimited",
    "orgs and BYOK calls reserve nothing.",
    "",
]


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def _table(figures: dict[str, Any]) -> list[str]:
    if all(isinstance(v, dict) for v in figures.values()) and figures:
        columns = sorted({k for v in figures.values() for k in v})
        lines = ["| scenario | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for name, row in figures.items():
            lines.append(f"| {name} | " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
        return lines
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in figures.items()]
    return lines


def render(document: dict[str, Any]) -> str:
    sections: dict[str, Any] = document.get("sections", {})
    out = [
        "# Reliability: what the service survives",
        "",
        "Figures from the abuse and fault suite (`tests/reliability/`, issue 6). Every number below was",
        "written by a test run into `.local/reliability/figures.json` and rendered by",
        "`python -m tests.reliability.report`; none is typed in by hand. To reproduce:",
        "",
        "```bash",
        f"{PYTEST} tests/reliability                # or the whole suite: make test",
        ".venv/bin/python -m tests.reliability.report",
        "```",
        "",
        f"Figures written at {document.get('written_at', '?')} (UTC). Each table names the test that produced it;",
        f"`{PYTEST} tests/reliability/<file>::<test>` reruns just that one. They were measured on the local",
        "stand-ins the suite starts itself (embedded PostgreSQL, moto's Secrets Manager, an HTTP fake LLM), so",
        "counts are exact and durations are those of the test machine (2 cores), not of AWS.",
        "",
    ]
    for title, parts in CASES:
        out += [f"## {title}", ""]
        for part in parts:
            target, _, options = part.test.partition(" ")
            quoted = f"'tests/reliability/{target}'" if "[" in target else f"tests/reliability/{target}"
            command = f"{PYTEST} {quoted} {options}".rstrip()
            out += [f"### {part.title}", "", f"Command: `{command}`", ""]
            if part.meaning:
                out += [part.meaning, ""]
            figures = sections.get(part.key)
            out += _table(figures) if figures else ["*(no figures: the test did not run)*"]
            out.append("")
        if title.startswith("5."):
            out += QUOTA_NOTE
    out += [
        "## Bugs found",
        "",
        "Open ones are pinned by strict xfail tests: a fix turns the test into an XPASS, which fails the suite",
        "until the marker is removed.",
        "",
    ]
    for number, (title, test, status, detail) in enumerate(BUGS, start=1):
        out += [f"{number}. **{title}** ({status}) — `tests/reliability/{test}`. {detail}", ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--figures", type=Path, default=FIGURES_PATH)
    parser.add_argument("--output", type=Path, default=DOC_PATH)
    args = parser.parse_args(argv)
    document = json.loads(args.figures.read_text())
    args.output.write_text(render(document))
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
