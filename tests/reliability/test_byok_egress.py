"""Case 12: BYOK base URLs spelling loopback every way an admin could type it (DESIGN §13).

Every spelling goes through both entry points (HTTP API and direct invoke) with ``https`` and
``http``, no allow-list. The figures count the refusals and, on the network, what was opened:
connections accepted by real listeners on every loopback address the spellings mean, plus every
TCP connection httpcore was asked for (target: 0 of both).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.seed import tokens_used
from service.errors import InvalidRequest
from tests.integration.egress_support import (
    LOOPBACK_SPELLINGS,
    ConnectLog,
    Listeners,
    allow_networks,
    byok_tenant,
    spelled_url,
)
from tests.reliability.conftest import call_route, drift_body, invoke_event

REFUSAL = {"reason": "byok_base_url_not_allowed"}


def _refused_over_http(body: dict[str, Any]) -> bool:
    reply = call_route("drift", body)
    payload = json.loads(reply["body"])
    return (
        int(reply["statusCode"]) == 400
        and payload["error_code"] == "INVALID_REQUEST"
        and payload["error"] == "BYOK base_url is not allowed"
        and payload["details"] == REFUSAL
    )


def _refused_direct(body: dict[str, Any]) -> bool:
    try:
        invoke_event("drift", body)
    except InvalidRequest as exc:
        return exc.details == REFUSAL
    return False


def test_loopback_spellings_are_refused_and_open_no_connection(
    idempotency_off, admin_db, llm_server, monkeypatch: pytest.MonkeyPatch, figures
):
    allow_networks(monkeypatch, "")
    connect_log = ConnectLog.installed(monkeypatch)
    listeners = Listeners()
    rows: dict[str, dict[str, Any]] = {}
    spellings = [(s, a) for s, a in LOOPBACK_SPELLINGS if a in listeners.by_address]
    try:
        for entry, refused_by in (("HTTP API", _refused_over_http), ("direct invoke", _refused_direct)):
            for scheme in ("https", "http"):
                refused = 0
                metered = 0
                accepted_before = listeners.accepted()
                connects_before = len(connect_log.opened) + len(connect_log.stopped)
                for spelling, _ in spellings:
                    tenant = byok_tenant(admin_db, spelled_url(scheme, spelling, listeners.port))
                    refused += refused_by(drift_body(tenant))
                    metered += tokens_used(admin_db, tenant.org_id)
                rows[f"{entry}, {scheme}://"] = {
                    "spellings_tried": len(spellings),
                    "refused": refused,
                    "connections_accepted": listeners.accepted() - accepted_before,
                    "tcp_connects_attempted": len(connect_log.opened) + len(connect_log.stopped) - connects_before,
                    "llm_requests": len(llm_server.requests),
                    "tokens_metered": metered,
                }
    finally:
        listeners.close()
    figures.record("byok_egress_spellings", **rows)
    figures.record(
        "byok_egress_spelling_list",
        tried=[spelling for spelling, _ in spellings],
        skipped_no_ipv6_loopback=[s for s, a in LOOPBACK_SPELLINGS if (s, a) not in spellings] or "none",
    )
    for row in rows.values():
        assert row["refused"] == row["spellings_tried"] > 0
        assert row["connections_accepted"] == row["tcp_connects_attempted"] == 0
        assert row["llm_requests"] == row["tokens_metered"] == 0
