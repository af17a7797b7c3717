"""DESIGN §13 as pure functions: which addresses a BYOK connection may reach.

Private ranges are classified here with no traffic at all (§13.4); the few tests that open a
socket use loopback listeners only, and are there to show what the guarded transport does
before any connection is tried.
"""

from __future__ import annotations

import ipaddress

import httpcore
import pytest

from devtools.fake_llm import LOOPBACK_NETWORKS
from service import egress
from service.budget import BudgetGuard
from service.config import Settings, parse_cidr_list
from service.errors import InternalError, InvalidRequest, UpstreamError
from service.llm import LlmClient, LlmTarget
from tests.integration.egress_support import CountingListener

LOOPBACK = parse_cidr_list(LOOPBACK_NETWORKS)

NOT_PUBLIC = [
    # IPv4: loopback, RFC 1918, link-local (cloud metadata), CGNAT, "this network", multicast,
    # reserved, broadcast, benchmarking, documentation, IETF protocol assignments.
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.0",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.0.1",
    "192.168.255.255",
    "169.254.169.254",
    "169.254.0.1",
    "100.64.0.1",
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.1",
    "192.0.0.1",
    # IPv6: loopback, unspecified, unique-local, link-local, site-local, multicast, documentation.
    "::1",
    "::",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%2",
    "febf::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "100::1",
    # IPv4 carried in IPv6: mapped, compatible, NAT64 (well-known and local-use), 6to4.
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",
    "::ffff:0.0.0.0",
    "::127.0.0.1",
    "::10.0.0.1",
    "64:ff9b::127.0.0.1",
    "64:ff9b::10.0.0.1",
    "64:ff9b::169.254.169.254",
    "64:ff9b:1::8.8.8.8",
    "2002:7f00:1::",
    "2002:a00:1::1",
    "2002:c0a8:101::",
    "2002:a9fe:a9fe::",
    # Teredo.
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "172.15.255.255",
    "172.32.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "169.253.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::8.8.8.8",
    "2002:808:808::1",
]


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_addresses_inside_a_network_are_not_public(text):
    address = ipaddress.ip_address(text)
    assert not egress.is_public(address)
    assert not egress.may_connect(address, (), tls=True)


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_public(text):
    address = ipaddress.ip_address(text)
    assert egress.is_public(address)
    assert egress.may_connect(address, (), tls=True)
    assert not egress.may_connect(address, (), tls=False)  # plain http only when allow-listed


def test_embedded_ipv4_addresses_are_found():
    def carried(text: str) -> str | None:
        found = egress.embedded_ipv4(ipaddress.IPv6Address(text))
        return None if found is None else str(found)

    assert carried("::ffff:127.0.0.1") == "127.0.0.1"
    assert carried("::7f00:1") == "127.0.0.1"
    assert carried("64:ff9b::a00:1") == "10.0.0.1"
    assert carried("2002:a9fe:a9fe::") == "169.254.169.254"
    assert carried("2606:4700:4700::1111") is None


def test_the_allow_list_admits_its_networks_only_address_by_address():
    allowed = parse_cidr_list("127.0.0.2/32, fd00::/8")
    for text, expected in [
        ("127.0.0.2", True),
        ("::ffff:127.0.0.2", True),  # IPv4-mapped: judged as the IPv4 address
        ("127.0.0.1", False),
        ("127.0.0.3", False),
        ("fd00::5", True),
        ("fe80::1", False),
        ("10.0.0.1", False),
    ]:
        address = ipaddress.ip_address(text)
        assert egress.may_connect(address, allowed, tls=False) is expected, text
        assert egress.may_connect(address, allowed, tls=True) is expected, text


def test_cidr_lists_are_parsed_once_into_settings():
    settings = Settings.from_env({"BYOK_PRIVATE_NETWORKS_ALLOWED": " 127.0.0.0/8 , ::1/128,"})
    assert settings.byok_private_networks_allowed == LOOPBACK
    assert Settings.from_env({}).byok_private_networks_allowed == ()
    assert Settings.from_env({"BYOK_PRIVATE_NETWORKS_ALLOWED": "  "}).byok_private_networks_allowed == ()


@pytest.mark.parametrize("bad", ["127.0.0.1/8", "10.0.0.0/33", "localhost", "127.0.0.0/8;10.0.0.0/8", "::1/129"])
def test_an_invalid_cidr_is_a_configuration_error(bad):
    with pytest.raises(ValueError, match="is not a CIDR network"):
        parse_cidr_list(bad)
    with pytest.raises(InternalError) as raised:
        Settings.from_env({"BYOK_PRIVATE_NETWORKS_ALLOWED": f"127.0.0.0/8,{bad}"})
    assert raised.value.details == {"fields": ["byok_private_networks_allowed"]}


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("localhost", "127.0.0.1"),
        ("LOCALHOST", "127.0.0.1"),
        ("localhost.", "127.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_numeric_and_local_spellings_resolve_to_what_they_mean(spelling, address):
    """The system resolver reads them (no DNS query leaves: numeric forms and /etc/hosts)."""
    resolved = egress.resolve_host(spelling, 443)
    assert ipaddress.ip_address(address) in resolved
    assert all(not egress.may_connect(a, (), tls=True) for a in resolved)
    with pytest.raises(InvalidRequest) as raised:
        egress.permitted_addresses(spelling, 443, (), tls=True)
    assert (raised.value.message, raised.value.details) == (
        "BYOK base_url is not allowed",
        {"reason": "byok_base_url_not_allowed"},
    )


def test_one_address_that_may_not_be_reached_refuses_the_host(monkeypatch):
    monkeypatch.setattr(egress, "resolve_host", lambda host, port: [ipaddress.ip_address(a) for a in host.split(",")])
    assert egress.permitted_addresses("127.0.0.2", 80, parse_cidr_list("127.0.0.2/32"), tls=False)
    with pytest.raises(InvalidRequest):
        egress.permitted_addresses("127.0.0.2,127.0.0.1", 80, parse_cidr_list("127.0.0.2/32"), tls=False)


def test_an_unresolvable_host_is_a_connect_error_not_a_refusal():
    with pytest.raises(httpcore.ConnectError):
        egress.resolve_host("no such host.invalid", 443)


@pytest.fixture
def listener():
    opened = CountingListener("127.0.0.1")
    yield opened
    opened.close()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1:{port}/x",
        "ws://127.0.0.1:{port}/x",
        "https:///v1",
        "/v1/chat/completions",
        "https://127.000.0.1/",
    ],
)
def test_urls_that_are_not_http_or_https_are_refused_before_connecting(listener, url):
    client = egress.guarded_client(egress.GuardedTransport(lambda: LOOPBACK))
    with pytest.raises(InvalidRequest):
        client.post(url.format(port=listener.port), json={})
    assert listener.accepted() == 0


def test_the_guarded_client_ignores_proxy_variables_and_redirects(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    client = egress.guarded_client()
    assert client.follow_redirects is False
    assert client._mounts == {}  # a proxy would resolve the host itself, out of the guard's sight
    transport = client._transport
    assert isinstance(transport, egress.GuardedTransport)
    pools = [t._pool for t in transport._by_scheme.values()]
    assert all(isinstance(pool, httpcore.ConnectionPool) for pool in pools)
    assert all(isinstance(pool._network_backend, egress.GuardedBackend) for pool in pools)


def test_a_refusal_is_not_retried_and_opens_nothing(listener):
    """LlmClient hands the refusal on as InvalidRequest at once: no backoff, no 502."""
    sleeps: list[float] = []
    client = LlmClient(sleep=sleeps.append, guarded_transport=egress.GuardedTransport(lambda: ()))
    target = LlmTarget("openai", f"http://127.0.0.1:{listener.port}", "sk-x", "m", egress_guarded=True)
    with pytest.raises(InvalidRequest):
        client.complete(target, "system", "user", BudgetGuard.start("llm", soft_ms=5_000, hard_ms=5_000))
    assert sleeps == [] and listener.accepted() == 0
    # The same URL as the operator's platform endpoint is not guarded: the listener sees it.
    unguarded = LlmTarget("openai", f"http://127.0.0.1:{listener.port}", "sk-x", "m")
    with pytest.raises(UpstreamError):  # the listener hangs up at once
        LlmClient(sleep=sleeps.append).complete(
            unguarded, "system", "user", BudgetGuard.start("llm", soft_ms=5_000, hard_ms=5_000)
        )
    assert listener.accepted() >= 1


def test_tls_uses_the_hostname_while_the_socket_goes_to_the_checked_address(monkeypatch):
    """httpcore starts TLS on our stream with ``server_hostname`` = the URL's host."""
    seen: list[tuple[str, str | None]] = []
    original_connect = httpcore.SyncBackend.connect_tcp

    class Probe(Exception):
        pass

    def connect_tcp(self, host, port, *args, **kwargs):
        stream = original_connect(self, host, port, *args, **kwargs)

        class Recording(httpcore.NetworkStream):
            def start_tls(self, ssl_context, server_hostname=None, timeout=None):
                seen.append((host, server_hostname))
                stream.close()
                raise Probe()

            def read(self, max_bytes, timeout=None):
                return stream.read(max_bytes, timeout)

            def write(self, buffer, timeout=None):
                stream.write(buffer, timeout)

            def close(self):
                stream.close()

        return Recording()

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    listener = CountingListener("127.0.0.1")
    try:
        client = egress.guarded_client(egress.GuardedTransport(lambda: LOOPBACK))
        with pytest.raises(Probe):
            client.post(f"https://localhost:{listener.port}/v1/chat/completions", json={})
    finally:
        listener.close()
    assert len(seen) == 1
    connected_to, server_hostname = seen[0]
    assert server_hostname == "localhost"  # SNI and certificate checks: the hostname
    assert ipaddress.ip_address(connected_to).is_loopback  # the socket: the IP literal that was judged


def test_a_host_with_several_permitted_addresses_falls_back_to_the_next(monkeypatch):
    """127.0.0.3 refuses the connection (nothing listens there), 127.0.0.2 takes it."""
    opened = CountingListener("127.0.0.2")
    try:
        answer = [ipaddress.ip_address("127.0.0.3"), ipaddress.ip_address("127.0.0.2")]
        monkeypatch.setattr(egress, "resolve_host", lambda host, port: answer)
        backend = egress.GuardedBackend(lambda: LOOPBACK, tls=False)
        stream = backend.connect_tcp("two-addresses.test", opened.port, timeout=2.0)
        stream.close()
        assert opened.accepted() == 1
    finally:
        opened.close()
