"""DESIGN §13 through the drift handler: BYOK base URLs cannot reach inside the network.

Every refusal is proved by what reached the network, not by the reply alone: real listeners on
the loopback addresses the URL means count the connections they accepted, and the connect log
counts what httpcore was asked to open. Only loopback is ever targeted (§13.4); private ranges
are covered as a pure function in tests/unit/test_egress.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.fake_llm import FakeLlmServer, Step
from devtools.seed import add_capture, make_tenant, tokens_used
from service.errors import InvalidRequest
from tests.integration.drift_support import call_direct, call_http, score_body
from tests.integration.egress_support import (
    LOOPBACK_SPELLINGS,
    ConnectLog,
    CountingListener,
    Listeners,
    allow_networks,
    byok_tenant,
    set_byok_url,
    spelled_url,
)

# A public address a patched resolver hands out as an answer. Nothing ever connects to it:
# the connect log stops any non-loopback connection before a socket is made.
PUBLIC_ANSWER = "1.1.1.1"
REBINDING_HOST = "rebinding.byok.test"


def assert_refused(status: int, body: dict[str, Any]) -> None:
    assert status == 400, body
    assert (body["error_code"], body["error"], body["details"]) == (
        "INVALID_REQUEST",
        "BYOK base_url is not allowed",
        {"reason": "byok_base_url_not_allowed"},
    )


def reservations(db: Any) -> int:
    return int(db.run("SELECT count(*) FROM contract_drift.usage_reservations")[0][0])


@pytest.fixture
def connect_log(monkeypatch: pytest.MonkeyPatch) -> ConnectLog:
    return ConnectLog.installed(monkeypatch)


@pytest.fixture
def listeners() -> Iterator[Listeners]:
    opened = Listeners()
    yield opened
    opened.close()


@pytest.fixture
def no_allow_list(idempotency_off: None, monkeypatch: pytest.MonkeyPatch) -> None:
    allow_networks(monkeypatch, "")


@pytest.mark.parametrize("scheme", ["https", "http"])
@pytest.mark.parametrize(("spelling", "address"), LOOPBACK_SPELLINGS, ids=[s for s, _ in LOOPBACK_SPELLINGS])
def test_every_loopback_spelling_is_refused_without_a_connection(
    no_allow_list, admin_db, llm_server, listeners: Listeners, connect_log, scheme, spelling, address
):
    if address not in listeners.by_address:
        pytest.skip("no IPv6 loopback on this machine")
    tenant = byok_tenant(admin_db, spelled_url(scheme, spelling, listeners.port))
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert_refused(status, body)
    with pytest.raises(InvalidRequest) as raised:
        call_direct(score_body(tenant, [("GET", "/a")]))
    assert raised.value.details == {"reason": "byok_base_url_not_allowed"}
    assert listeners.accepted() == 0
    assert connect_log.opened == connect_log.stopped == []
    # No platform call in its place, nothing metered or reserved.
    assert llm_server.requests == []
    assert tokens_used(admin_db, tenant.org_id) == 0 and reservations(admin_db) == 0


class ScriptedResolver:
    """``REBINDING_HOST`` answers resolution n with ``answers[n]`` (the last one once they run
    out); ``given`` lists what was answered. Every other name goes to the real resolver."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.given: list[str] = []

    def answer(self) -> str:
        address = self.answers[min(len(self.given), len(self.answers) - 1)]
        self.given.append(address)
        return address


@pytest.fixture
def patched_resolver(monkeypatch: pytest.MonkeyPatch) -> ScriptedResolver:
    resolver = ScriptedResolver()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != REBINDING_HOST:
            return real(host, port, *args, **kwargs)
        address = resolver.answer()
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return resolver


def test_an_answer_that_changes_between_two_resolutions_cannot_reach_loopback(
    no_allow_list, admin_db, patched_resolver, connect_log
):
    """DNS rebinding inside one request: resolution 1 answers a public address, resolution 2
    loopback. The backend connects to the very address it judged (the public one, which the
    connect log keeps on this machine), and the retry's fresh answer is judged again and refused.
    A guard that checked one resolution and let the socket resolve again would have reached the
    listener."""
    loopback = CountingListener("127.0.0.1")
    try:
        patched_resolver.answers = [PUBLIC_ANSWER, "127.0.0.1"]
        tenant = byok_tenant(admin_db, f"https://{REBINDING_HOST}:{loopback.port}")
        assert_refused(*call_http(score_body(tenant, [("GET", "/a")])))
        assert patched_resolver.given == [PUBLIC_ANSWER, "127.0.0.1"]  # one resolution per connection attempt
        assert connect_log.stopped == [(PUBLIC_ANSWER, loopback.port)]  # the checked IP, never the name
        assert connect_log.opened == []
        assert loopback.accepted() == 0
    finally:
        loopback.close()


@pytest.fixture
def second_llm(llm_server: FakeLlmServer) -> Iterator[tuple[FakeLlmServer, CountingListener]]:
    """A fake LLM on 127.0.0.2 and a counting listener on 127.0.0.1, on the same port."""
    for _ in range(20):
        listener = CountingListener("127.0.0.1")
        server = FakeLlmServer("127.0.0.2", listener.port)
        try:
            server.start()
        except OSError:
            listener.close()
            continue
        yield server, listener
        server.stop()
        listener.close()
        return
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


def test_each_connection_is_judged_by_the_address_it_goes_to(
    idempotency_off, admin_db, monkeypatch, patched_resolver, second_llm, connect_log
):
    """One host, two connections: allowed while it resolves to 127.0.0.2, refused once it resolves
    to 127.0.0.1, which the allow-list does not hold."""
    server, loopback = second_llm
    allow_networks(monkeypatch, "127.0.0.2/32")
    server.enqueue(Step(headers={"connection": "close"}))  # no kept-alive connection to reuse
    tenant = byok_tenant(admin_db, f"http://{REBINDING_HOST}:{loopback.port}")
    patched_resolver.answers = ["127.0.0.2", "127.0.0.1"]
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body.get("provider")) == (200, "byok"), body
    assert len(server.requests) == 1
    assert_refused(*call_http(score_body(tenant, [("GET", "/a")])))
    assert patched_resolver.given == ["127.0.0.2", "127.0.0.1"]
    assert len(server.requests) == 1 and loopback.accepted() == 0
    assert connect_log.opened == [("127.0.0.2", loopback.port)] and connect_log.stopped == []


def test_the_allow_list_is_per_address(service_env, admin_db, monkeypatch, second_llm, connect_log):
    server, loopback = second_llm
    allow_networks(monkeypatch, "127.0.0.2/32")
    allowed = byok_tenant(admin_db, server.base_url)  # http://127.0.0.2:port
    status, body = call_http(score_body(allowed, [("GET", "/a")]))
    assert (status, body.get("provider")) == (200, "byok"), body
    assert server.requests[0].headers["authorization"].startswith("Bearer sk-org-")
    for url in (f"http://127.0.0.1:{loopback.port}", f"https://127.0.0.1:{loopback.port}"):
        assert_refused(*call_http(score_body(byok_tenant(admin_db, url), [("GET", "/a")])))
    assert loopback.accepted() == 0
    assert [host for host, _ in connect_log.opened] == ["127.0.0.2"] and connect_log.stopped == []


def test_plain_http_needs_the_allow_list(idempotency_off, admin_db, monkeypatch, llm_server, connect_log):
    """The fake LLM itself: reachable over http with loopback allow-listed, refused without."""
    llm_server.enqueue(Step(headers={"connection": "close"}))  # the refusal needs a new connection
    tenant = byok_tenant(admin_db, llm_server.base_url)
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body.get("provider")) == (200, "byok"), body
    assert len(llm_server.requests) == 1
    allow_networks(monkeypatch, "")
    assert_refused(*call_http(score_body(tenant, [("GET", "/a")])))
    assert len(llm_server.requests) == 1 and len(connect_log.opened) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_not_followed(service_env, admin_db, llm_server, listeners: Listeners, connect_log, status):
    """An allowed loopback provider redirecting elsewhere: a 502, and the second server sees nothing."""
    target = f"http://127.0.0.2:{listeners.port}/v1/chat/completions"
    llm_server.enqueue(Step(status=status, body=b"{}", headers={"location": target}))
    tenant = byok_tenant(admin_db, llm_server.base_url)
    status_code, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status_code, body["error_code"], body["details"]) == (502, "UPSTREAM_ERROR", {"provider_status": status})
    assert len(llm_server.requests) == 1
    assert listeners.accepted() == 0
    assert {port for _, port in connect_log.opened} == {int(llm_server.base_url.rsplit(":", 1)[1])}


def test_the_platform_endpoint_is_not_checked(no_allow_list, admin_db, llm_server, connect_log):
    """PLATFORM_LLM_ENDPOINT is the operator's: plain http on loopback works with no allow-list."""
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    status, body = call_http(score_body(tenant, [("GET", "/a")]))
    assert (status, body.get("provider")) == (200, "platform"), body
    assert len(llm_server.requests) == 1


def test_a_url_that_is_not_http_is_refused(no_allow_list, admin_db, llm_server, connect_log):
    tenant = make_tenant(admin_db, "pro")
    add_capture(admin_db, tenant.workspace_id, "GET", "/a")
    for url in ("ftp://127.0.0.1:21", "file:///etc/passwd", "https://", "127.0.0.1:8080"):
        set_byok_url(admin_db, tenant, url)
        assert_refused(*call_http(score_body(tenant, [("GET", "/a")])))
    assert connect_log.opened == connect_log.stopped == [] and llm_server.requests == []
