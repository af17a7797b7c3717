"""Where a BYOK ``base_url`` may connect (DESIGN §13).

An org's admins type their BYOK ``base_url``, yet the function calls it from inside the
operator's network. So a BYOK connection may only reach public addresses over TLS, or
addresses the operator allow-listed in ``BYOK_PRIVATE_NETWORKS_ALLOWED`` (plain ``http``
included). The verdict is made by :class:`GuardedBackend`, the httpcore network backend of the
BYOK client, each time it opens a TCP connection: it resolves the host once, judges every
address of that answer, and connects to one of those very addresses. There is no second
resolution a changed DNS answer could slip into, and every spelling of a host (``127.1``,
``2130706433``, ``0x7f000001``, ``[::ffff:127.0.0.1]``, ``LOCALHOST``) is judged by the address
it resolves to, never by its text.

The platform endpoint is the operator's own and is not guarded.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore
import httpx
from aws_lambda_powertools.metrics import MetricUnit

from service.config import IpNetwork, get_settings
from service.errors import InvalidRequest
from service.observability import logger, metrics

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AllowList = Callable[[], Sequence[IpNetwork]]

REFUSAL_MESSAGE = "BYOK base_url is not allowed"
REFUSAL_REASON = "byok_base_url_not_allowed"
# RFC 6052's well-known NAT64 prefix: a NAT64 gateway (an AWS NAT gateway with DNS64, say)
# forwards 64:ff9b::a.b.c.d to the IPv4 address a.b.c.d.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
# IPv4-compatible IPv6 (deprecated, RFC 4291 §2.5.5.1): the IPv4 address in the low 32 bits.
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def refusal() -> InvalidRequest:
    """DESIGN §13.3's reply. The class itself (not a subclass): Step Functions matches its name."""
    return InvalidRequest(REFUSAL_MESSAGE, {"reason": REFUSAL_REASON})


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, when traffic to it really goes to that IPv4.

    IPv4-mapped (``::ffff:a.b.c.d``) and IPv4-compatible (``::a.b.c.d``) addresses are IPv4
    spelled in IPv6; NAT64 (``64:ff9b::a.b.c.d``) and 6to4 (``2002:AABB:CCDD::``) are
    translated or tunnelled to it. Any of them could carry ``127.0.0.1`` or ``10.0.0.1``.
    """
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in IPV4_COMPATIBLE or address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _is_public_as_is(address: IpAddress) -> bool:
    # ``is_global`` alone lets multicast (224.0.0.0/4, ff0e::/16), parts of ::/8 and the
    # deprecated site-local fec0::/10 through.
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def is_public(address: IpAddress) -> bool:
    """True for an address on the public Internet: never loopback, private, link-local
    (169.254.0.0/16), CGNAT (100.64.0.0/10), unique-local, multicast, reserved or unspecified.
    An IPv6 address that carries an IPv4 one is judged by that IPv4 address.
    """
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # a scope id ("%eth0") changes nothing
        carried = embedded_ipv4(address)
        if carried is not None:
            return _is_public_as_is(carried)
    return _is_public_as_is(address)


def is_allow_listed(address: IpAddress, allowed: Iterable[IpNetwork]) -> bool:
    """True when the address, or the IPv4 address it carries, is inside an allowed network."""
    candidates: list[IpAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        unscoped = ipaddress.IPv6Address(address.packed)
        carried = embedded_ipv4(unscoped)
        candidates = [unscoped] if carried is None else [unscoped, carried]
    return any(candidate in network for network in allowed for candidate in candidates)


def may_connect(address: IpAddress, allowed: Iterable[IpNetwork], *, tls: bool) -> bool:
    """DESIGN §13.1-2: allow-listed addresses always; public ones only over TLS."""
    return is_allow_listed(address, allowed) or (tls and is_public(address))


def resolve_host(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to, by the system resolver, in its order.

    The resolver also reads numeric spellings (``127.1``, ``2130706433``, ``0x7f000001``), so the
    guard sees the address they mean. A trailing root dot (``localhost.``) names the same host.
    """
    name = host[:-1] if host.endswith(".") and not host.endswith("..") else host
    try:
        answer = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from None
    addresses: list[IpAddress] = []
    for _family, _type, _proto, _canonical, sockaddr in answer:
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    return addresses


def permitted_addresses(host: str, port: int, allowed: Iterable[IpNetwork], *, tls: bool) -> list[IpAddress]:
    """The addresses a connection to ``host`` may use; refused unless every one of them passes.

    A single address that may not be reached refuses the host: otherwise which address gets
    used would be up to the resolver's order.
    """
    networks = tuple(allowed)
    addresses = resolve_host(host, port)
    refused = [str(a) for a in addresses if not may_connect(a, networks, tls=tls)]
    if refused or not addresses:
        # The operator's view: which host an org tried, and where it led (no path, no key).
        logger.warning("BYOK base_url refused", extra={"host": host, "port": port, "tls": tls, "refused": refused})
        metrics.add_metric(name="ByokUrlRefused", unit=MetricUnit.Count, value=1)
        raise refusal()
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's synchronous backend, connecting only to addresses :func:`permitted_addresses` passed.

    httpcore asks for ``connect_tcp(host)`` and then runs TLS over the stream with
    ``server_hostname`` set to the URL's host, so SNI and certificate checks still use the
    hostname while the socket goes to the checked IP literal (no second resolution).
    """

    def __init__(self, allowed: AllowList, *, tls: bool) -> None:
        self._allowed = allowed
        self._tls = tls
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = permitted_addresses(host, port, self._allowed(), tls=self._tls)
        *others, last = addresses  # never empty: permitted_addresses refuses an empty answer
        for address in others:  # as socket.create_connection does, each with the whole timeout
            try:
                return self._sockets.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue
        return self._sockets.connect_tcp(
            str(last), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        raise refusal()  # never asked for: no unix socket is configured

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


def _pooled_transport(backend: GuardedBackend) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` whose connection pool opens its connections through ``backend``.

    httpx 0.28 takes no network backend, so the pool it built (no proxy, no connection yet) is
    replaced by one with httpx's own defaults (TLS context, 100 connections, 20 kept alive for
    5 s) and ``backend``; the transport's request and error mapping stay httpx's.
    """
    transport = httpx.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=backend,
    )
    return transport


def configured_allow_list() -> Sequence[IpNetwork]:
    """``BYOK_PRIVATE_NETWORKS_ALLOWED`` of the process settings (read when a connection opens)."""
    return get_settings().byok_private_networks_allowed


class GuardedTransport(httpx.BaseTransport):
    """The BYOK client's transport: ``https`` to public or allow-listed hosts, ``http`` to
    allow-listed ones only, any other URL refused before a connection is tried.

    One pool per scheme, because httpcore tells the backend the host and port, not the scheme.
    """

    def __init__(self, allowed: AllowList = configured_allow_list) -> None:
        self._by_scheme = {
            "https": _pooled_transport(GuardedBackend(allowed, tls=True)),
            "http": _pooled_transport(GuardedBackend(allowed, tls=False)),
        }

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._by_scheme.get(request.url.scheme)
        if transport is None or not request.url.host:
            raise refusal()
        return transport.handle_request(request)

    def close(self) -> None:
        for transport in self._by_scheme.values():
            transport.close()


class GuardedClient(httpx.Client):
    """An httpx client whose URLs are an org's: one httpx cannot even parse is refused too."""

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        try:
            return super().build_request(*args, **kwargs)
        except httpx.InvalidURL:
            raise refusal() from None


def guarded_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """The httpx client for BYOK targets.

    Redirects are not followed (a 3xx is the provider's answer, never a second connection) and
    proxy variables of the environment are ignored: through a proxy the proxy would resolve
    the host, out of the guard's sight.
    """
    return GuardedClient(transport=transport or GuardedTransport(), follow_redirects=False, trust_env=False)
