"""Proving that a refused BYOK base_url opened no connection (DESIGN §13).

A refusal's reply is not proof enough: these helpers count what really reached the network.
:class:`CountingListener` is a real TCP listener on a loopback address that counts the
connections the kernel completed for it; :class:`ConnectLog` records every TCP connection
httpcore opens in this process and stops any to a non-loopback address before a packet leaves
(DESIGN §13.4: tests reach loopback only, even when the code under test is wrong).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import uuid
from typing import Any

import httpcore
import pytest

from devtools.seed import Tenant, add_capture, make_tenant, set_org_setting
from service.config import get_settings
from service.drift.byok import encrypt_api_key
from tests.conftest import BYOK_PASSPHRASE

# Every spelling of loopback an admin could type as a BYOK host, with the listener it would reach.
LOOPBACK_SPELLINGS: list[tuple[str, str]] = [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.2", "127.0.0.2"),
    ("127.1.2.3", "127.1.2.3"),
    ("127.1", "127.0.0.1"),
    ("127.000.000.001", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("localhost", "127.0.0.1"),
    ("LOCALHOST", "127.0.0.1"),
    ("LocalHost", "127.0.0.1"),
    ("localhost.", "127.0.0.1"),
    ("[::1]", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[::ffff:127.0.0.1]", "127.0.0.1"),
    ("[::ffff:7f00:1]", "127.0.0.1"),
]
LISTENER_ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.1.2.3", "::1")


class CountingListener:
    """A listening socket on ``host`` that counts (and closes) the connections made to it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host = host
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self._socket.listen(64)
        self._socket.settimeout(0.05)
        self.port: int = self._socket.getsockname()[1]
        self._accepted = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._accepted += 1
            connection.close()

    def accepted(self) -> int:
        """Connections accepted so far, the kernel's backlog included (nothing still in flight escapes)."""
        self._stopped.set()
        self._thread.join()
        self._socket.setblocking(False)
        while True:
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, OSError):
                break
            connection.close()
            self._accepted += 1
        self._socket.settimeout(0.05)
        self._stopped.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self._accepted

    def close(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._socket.close()


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


class Listeners:
    """One :class:`CountingListener` per loopback address of :data:`LISTENER_ADDRESSES`, on one port."""

    def __init__(self) -> None:
        self.by_address: dict[str, CountingListener] = {}
        for _ in range(20):  # a port free on every address
            first = CountingListener(LISTENER_ADDRESSES[0])
            try:
                others = [
                    CountingListener(address, first.port)
                    for address in LISTENER_ADDRESSES[1:]
                    if address != "::1" or ipv6_loopback_available()
                ]
            except OSError:
                first.close()
                continue
            self.by_address = {listener.host: listener for listener in [first, *others]}
            self.port = first.port
            return
        raise RuntimeError("no port free on every loopback listener address")

    def accepted(self) -> int:
        return sum(listener.accepted() for listener in self.by_address.values())

    def close(self) -> None:
        for listener in self.by_address.values():
            listener.close()


def _is_loopback(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def is_loopback_host(host: str) -> bool:
    """True when every address ``host`` stands for is a loopback one."""
    try:
        return _is_loopback(host)
    except ValueError:
        try:
            answer = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return False
        return bool(answer) and all(_is_loopback(str(entry[4][0])) for entry in answer)


class ConnectLog:
    """Every ``connect_tcp`` httpcore's socket backend is asked for: ``(host, port)`` in order.

    A connection to anything but loopback is stopped before it is tried and recorded in
    ``stopped``: a test can then fail on it instead of having sent traffic off the machine.
    """

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []
        self.stopped: list[tuple[str, int]] = []

    @classmethod
    def installed(cls, monkeypatch: pytest.MonkeyPatch) -> ConnectLog:
        """A log recording from now until ``monkeypatch`` is undone."""
        log = cls()
        log._install(monkeypatch)
        return log

    def _install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = httpcore.SyncBackend.connect_tcp
        log = self

        def connect_tcp(backend: httpcore.SyncBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            if not is_loopback_host(host):
                log.stopped.append((host, port))
                raise httpcore.ConnectError(f"test network rule: {host} is not loopback")
            log.opened.append((host, port))
            return original(backend, host, port, *args, **kwargs)

        monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)

    def to_port(self, port: int) -> list[tuple[str, int]]:
        return [entry for entry in self.opened + self.stopped if entry[1] == port]


def allow_networks(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Set ``BYOK_PRIVATE_NETWORKS_ALLOWED`` for this test (``""``: public https only)."""
    monkeypatch.setenv("BYOK_PRIVATE_NETWORKS_ALLOWED", value)
    get_settings.cache_clear()


def byok_tenant(db: Any, base_url: str, *, plan: str = "pro", provider: str = "openai") -> Tenant:
    """An org whose enabled BYOK key points at ``base_url``, with traffic on ``GET /a``.

    ``pro`` by default: a refused BYOK call must not fall back to the platform key it also has.
    """
    tenant = make_tenant(db, plan)
    add_capture(db, tenant.workspace_id, "GET", "/a")
    set_byok_url(db, tenant, base_url, provider=provider)
    return tenant


def set_byok_url(db: Any, tenant: Tenant, base_url: str, *, provider: str = "openai") -> None:
    set_org_setting(
        db,
        tenant.org_id,
        "byok",
        {
            "provider": provider,
            "api_key": encrypt_api_key(f"sk-org-{uuid.uuid4().hex[:8]}", BYOK_PASSPHRASE),
            "base_url": base_url,
            "model": "byok-model",
            "enabled": True,
        },
    )


def spelled_url(scheme: str, spelling: str, port: int) -> str:
    return f"{scheme}://{spelling}:{port}"
