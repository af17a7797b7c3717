"""Case 1: a thousand-odd wrong credentials against both routes — nobody let in, nothing learned.

Every refusal must be byte-for-byte the reply to a request with no token at all (same
``requestId`` in both events), so a caller cannot tell "wrong" from "missing" or from "almost
right". The comparison must be constant-time: shown in code (``hmac.compare_digest`` is the
only thing that decides, and nothing else looks at the header) and by counting, not timing,
what ``verify`` executes for tokens that share more or less of a prefix with the real one.
"""

from __future__ import annotations

import ast
import base64
import hmac
import inspect
import random
import sys
import time
import unicodedata
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from service import secrets as service_secrets
from service.config import get_settings
from service.db import Database
from service.secrets import InternalTokenVerifier, token_verifier
from tests.conftest import INTERNAL_TOKEN, TOKEN_SECRET
from tests.reliability.conftest import APPS, call_route, has_traceback

ROUTES = tuple(APPS)
REQUEST_ID = "00000000-0000-4000-8000-00000000a0a0"
MIN_WRONG_TOKENS = 1000
# Credentials not in the Authorization header: the events carry no Authorization at all.
ELSEWHERE_HEADERS: list[dict[str, str]] = [
    {"x-api-key": INTERNAL_TOKEN},
    {"x-authorization": f"Bearer {INTERNAL_TOKEN}"},
    {"proxy-authorization": f"Bearer {INTERNAL_TOKEN}"},
    {"authorization-token": INTERNAL_TOKEN},
    {"x-amz-security-token": INTERNAL_TOKEN},
    {"cookie": f"token={INTERNAL_TOKEN}"},
    {"bearer": INTERNAL_TOKEN},
    {"x-forwarded-authorization": f"Bearer {INTERNAL_TOKEN}"},
]
HOMOGLYPHS = {"e": "е", "o": "о", "a": "а", "t": "т", "i": "і", "n": "п", "0": "０", "1": "１"}
UNICODE_SPICE = ["\u200b", "\u200d", "\ufeff", "\u00a0", "\u2028", "\u202e", "é", "😀", "\u0301", "ſ"]


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def wrong_authorizations(token: str = INTERNAL_TOKEN, seed: int = 6) -> list[str]:
    """Distinct Authorization header values that must all be refused (the right one excluded)."""
    rng = random.Random(seed)
    right = _bearer(token)
    values: list[str] = ["", " ", "\t", "Bearer", "Bearer ", "Bearer  ", "bearer", "null", "undefined", "None"]
    # prefixes and suffixes of the token, and of the whole header
    values += [_bearer(token[:k]) for k in range(len(token))]
    values += [right[:k] for k in range(len(right))]
    values += [_bearer(token[k:]) for k in range(1, len(token))]
    values += [_bearer(token + extra) for extra in ("x", "0", " x", "\x00", "=", "==", ",", ";", ".", token)]
    values += [right + extra for extra in (" ", "  ", "\t", "\n", "\r\n", "\x00", ",", ";", f", {right}")]
    # one character substituted, inserted, deleted, at every position
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
    for position in range(len(token)):
        for _ in range(3):
            replacement = rng.choice(alphabet.replace(token[position], ""))
            values.append(_bearer(token[:position] + replacement + token[position + 1 :]))
        values.append(_bearer(token[:position] + rng.choice(alphabet) + token[position:]))
        values.append(_bearer(token[:position] + token[position + 1 :]))
    # case changes of the token and of the scheme
    values += [_bearer(token.upper()), _bearer(token.lower()), _bearer(token.swapcase()), _bearer(token.title())]
    for position, char in enumerate(token):
        if char.isalpha():
            values.append(_bearer(token[:position] + char.swapcase() + token[position + 1 :]))
    for scheme in ("bearer", "BEARER", "BeArEr", "bEARER", "Bearer:", "Bearer=", "Bearer,", "Bearer;", "Bearers"):
        values.append(f"{scheme} {token}")
    # whitespace around and inside
    for space in (" ", "  ", "\t", "\n", "\r", "\v", "\f", "\u00a0", "\u3000", "\u2003"):
        values += [f"Bearer{space}{token}", f"{space}{right}", f"{right}{space}", f"Bearer {space}{token}"]
    values += [f"Bearer{token}", f"Bearer {' '.join(token)}", f"Bearer {token[:10]} {token[10:]}"]
    # unicode look-alikes, invisible characters, normalisation forms
    for plain, glyph in HOMOGLYPHS.items():
        if plain in token:
            values.append(_bearer(token.replace(plain, glyph, 1)))
            values.append(_bearer(token.replace(plain, glyph)))
    for spice in UNICODE_SPICE:
        for position in (0, len(token) // 2, len(token)):
            values.append(_bearer(token[:position] + spice + token[position:]))
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in token)
    values += [_bearer(fullwidth), "Ｂｅａｒｅｒ " + token, _bearer(unicodedata.normalize("NFKD", "ﬁ" + token))]
    # quoting and encodings of the right token
    encoded = base64.b64encode(token.encode()).decode()
    values += [
        f'Bearer "{token}"',
        f"Bearer '{token}'",
        f"Bearer <{token}>",
        f"Bearer {{{token}}}",
        _bearer(encoded),
        _bearer(urllib.parse.quote(token + "/")),
        _bearer(token.encode().hex()),
        _bearer(token[::-1]),
        f"Bearer token={token}",
        f'Bearer realm="x", token="{token}"',
    ]
    # other schemes carrying the right token
    for scheme in ("Basic", "Token", "Digest", "Bearer-Token", "JWT", "ApiKey", "AWS4-HMAC-SHA256", "OAuth", "MAC"):
        values += [f"{scheme} {token}", f"{scheme} {encoded}"]
    values += [token, f"Basic {base64.b64encode(f'user:{token}'.encode()).decode()}", f"{token} Bearer"]
    # random tokens: same length, other lengths, very long
    for _ in range(700):
        length = rng.choice([len(token), len(token), rng.randint(1, 80)])
        values.append(_bearer("".join(rng.choice(alphabet) for _ in range(length))))
    values += [_bearer("A" * 10_000), _bearer(token * 1000), "Bearer " + "\u00e9" * 5_000]
    unique = list(dict.fromkeys(v for v in values if v != right))
    return unique


WRONG = wrong_authorizations()


def test_generator_covers_at_least_a_thousand_distinct_wrong_values():
    assert len(WRONG) >= MIN_WRONG_TOKENS
    assert _bearer(INTERNAL_TOKEN) not in WRONG


@pytest.mark.parametrize("route", ROUTES)
def test_no_wrong_credential_is_accepted_and_every_refusal_is_the_missing_token_reply(
    route, traverse_on, sm_calls, llm_server, monkeypatch, figures
):
    """Every variant (and the right token under another header) gets the no-token reply, exactly,
    and none of them reaches the database or the LLM."""
    queries = []
    original_query = Database.query

    def counting_query(self: Database, sql: str, **kwargs: Any) -> Any:
        queries.append(sql)
        return original_query(self, sql, **kwargs)

    monkeypatch.setattr(Database, "query", counting_query)
    body = {"org_id": "not-even-a-uuid"} if route == "drift" else {"text": "x"}
    missing = call_route(route, body, authorization=None, request_id=REQUEST_ID)
    assert missing["statusCode"] == 400
    assert '"Not found"' in missing["body"]
    sm_calls.reset()
    started = time.monotonic()
    accepted, different, tracebacks = [], [], 0
    for value in WRONG:
        reply = call_route(route, body, authorization=value, request_id=REQUEST_ID)
        if reply["statusCode"] != 400:
            accepted.append(value)
        if reply != missing:
            different.append(value)
        tracebacks += has_traceback(reply["body"])
    for extra in ELSEWHERE_HEADERS:
        reply = call_route(route, body, authorization=None, request_id=REQUEST_ID, headers=extra)
        assert reply == missing, extra
    reply = call_route(route, body, authorization=None, request_id=REQUEST_ID, query=f"token={INTERNAL_TOKEN}")
    assert reply == missing
    elapsed = time.monotonic() - started
    tried = len(WRONG) + len(ELSEWHERE_HEADERS) + 1
    interval = get_settings().token_refresh_min_interval_seconds
    bound = 1 + 1 + int(elapsed // interval)  # a cache fill, then at most one forced re-read per interval
    figures.record(
        f"auth_{route}",
        wrong_credentials_tried=tried,
        accepted=len(accepted),
        replies_differing_from_missing_token=len(different),
        tracebacks=tracebacks,
        secrets_manager_get_secret_value_calls=sm_calls.of(TOKEN_SECRET),
        moto_server_posts=sm_calls.server,
        flood_seconds=round(elapsed, 2),
        database_queries=len(queries),
        llm_requests=len(llm_server.requests),
        refresh_min_interval_seconds=interval,
        sm_call_bound=bound,
    )
    assert accepted == []
    assert different == []
    assert tracebacks == 0
    assert queries == [] and llm_server.requests == []
    assert sm_calls.of(TOKEN_SECRET) <= bound, (sm_calls.client, elapsed)


def test_right_token_on_drift_passes_auth(service_env):
    """Control for the test above: the same body with the right token gets past auth (to validation)."""
    reply = call_route("drift", {"org_id": "not-even-a-uuid"}, request_id=REQUEST_ID)
    assert reply["statusCode"] == 400
    assert '"VALIDATION_FAILED"' in reply["body"]


# --- constant time ---------------------------------------------------------------------


class CompareSpy:
    """Stands in for ``hmac.compare_digest``: records its inputs, and can force its verdict."""

    def __init__(self, verdict: bool | None = None) -> None:
        self.calls: list[tuple[bytes, bytes, bool]] = []
        self.verdict = verdict
        self._real = hmac.compare_digest

    def __call__(self, a: Any, b: Any) -> bool:
        result = self._real(a, b) if self.verdict is None else self.verdict
        self.calls.append((bytes(a), bytes(b), result))
        return result


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[CompareSpy]:
    recorder = CompareSpy()
    monkeypatch.setattr(service_secrets.hmac, "compare_digest", recorder)
    yield recorder


def test_compare_digest_alone_decides(service_env, monkeypatch):
    """Force compare_digest's verdict: wrong tokens get in, the right one is refused — nothing else decides."""
    always = CompareSpy(verdict=True)
    monkeypatch.setattr(service_secrets.hmac, "compare_digest", always)
    for value in WRONG[::50]:
        reply = call_route("drift", {}, authorization=value)
        assert '"VALIDATION_FAILED"' in reply["body"], value  # past auth, stopped only by the empty body
    never = CompareSpy(verdict=False)
    monkeypatch.setattr(service_secrets.hmac, "compare_digest", never)
    token_verifier._last_forced_refresh = float("-inf")
    reply = call_route("drift", {})
    assert reply["statusCode"] == 400 and '"Not found"' in reply["body"]


def test_every_wrong_token_is_compared_whole_against_the_whole_expected_header(service_env, spy, figures):
    """Same number of comparisons, same expected bytes, the candidate's full bytes — for every variant."""
    expected = _bearer(INTERNAL_TOKEN).encode()
    per_request: Counter[int] = Counter()
    for value in WRONG:
        token_verifier._last_forced_refresh = float("inf")  # no forced re-read: one comparison each
        before = len(spy.calls)
        call_route("drift", {}, authorization=value)
        made = spy.calls[before:]
        per_request[len(made)] += 1
        for candidate, reference, result in made:
            assert reference == expected
            assert candidate == value.encode()
            assert result is False
    figures.record("auth_constant_time", compare_digest_calls_per_wrong_token=dict(per_request))
    assert set(per_request) == {1}


def _lines_executed(verifier: InternalTokenVerifier, authorization: str) -> int:
    """Python lines ``verify`` runs for ``authorization`` (a count of work, not of time)."""
    count = 0
    source = service_secrets.__file__

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename == source:
            if event == "line":
                count += 1
            return tracer
        return None

    sys.settrace(tracer)
    try:
        verifier.verify(authorization)
    except Exception:  # noqa: BLE001 - refusals are the point; only the line count matters
        pass
    finally:
        sys.settrace(None)
    return count


def test_work_done_does_not_depend_on_how_much_of_the_token_is_right(service_env, figures):
    """Tokens sharing 0..N-1 leading characters with the real one run exactly the same lines."""
    verifier = InternalTokenVerifier(clock=lambda: 0.0)
    verifier._last_forced_refresh = 0.0  # inside the refresh interval: no re-read
    verifier.verify(_bearer(INTERNAL_TOKEN))  # warm the cache
    counts = {}
    for shared in range(len(INTERNAL_TOKEN)):
        candidate = INTERNAL_TOKEN[:shared] + ("#" * (len(INTERNAL_TOKEN) - shared))
        counts[shared] = _lines_executed(verifier, _bearer(candidate))
    figures.record(
        "auth_constant_time",
        prefix_lengths_checked=len(counts),
        distinct_line_counts=sorted(set(counts.values())),
    )
    assert len(set(counts.values())) == 1, counts


def test_nothing_but_compare_digest_looks_at_the_header_or_the_token():
    """Code-level proof: no ==, !=, in, startswith, len, slicing on the secret or the header."""
    tree = ast.parse(inspect.getsource(InternalTokenVerifier))
    sensitive = {"header", "token", "authorization", "expected"}
    offenders = []
    compare_digest_calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and not all(isinstance(op, ast.Is | ast.IsNot) for op in node.ops):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if names & sensitive:
                offenders.append(ast.unparse(node))
        if isinstance(node, ast.Subscript | ast.Slice):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if names & sensitive:
                offenders.append(ast.unparse(node))
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called == "hmac.compare_digest":
                compare_digest_calls += 1
            elif called.rsplit(".", 1)[-1] in {"startswith", "endswith", "find", "index", "count", "__eq__"} or (
                called == "len" and {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & sensitive
            ):
                offenders.append(ast.unparse(node))
    assert offenders == []
    assert compare_digest_calls == 1
    matches = inspect.getsource(InternalTokenVerifier._matches)
    assert 'hmac.compare_digest(header.encode("utf-8", "surrogatepass"), f"Bearer {token}".encode())' in matches


# Was an UnicodeEncodeError out of the handler (header.encode()) until surrogatepass.
@pytest.mark.parametrize("route", ROUTES)
def test_header_with_a_lone_surrogate_is_refused_not_crashed(route, traverse_on):
    """A JSON event may carry ``\\ud800``; the token check must refuse it like any wrong token."""
    missing = call_route(route, {}, authorization=None, request_id=REQUEST_ID)
    reply = call_route(route, {}, authorization=f"Bearer {INTERNAL_TOKEN}\ud800", request_id=REQUEST_ID)
    assert reply == missing
