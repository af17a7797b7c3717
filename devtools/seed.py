"""Rows for tests, the local demo and the benchmarks, written with the registry's columns only."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Tenant:
    org_id: uuid.UUID
    workspace_id: uuid.UUID


def make_tenant(db: Any, plan: str = "pro", limits: dict[str, Any] | None = None) -> Tenant:
    org_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    db.run(
        "INSERT INTO organizations (id, name, plan, limits_json) VALUES (:id, :name, :plan, CAST(:limits AS jsonb))",
        id=org_id,
        name=f"org-{plan}",
        plan=plan,
        limits=json.dumps(limits or {}),
    )
    db.run("INSERT INTO workspaces (id, org_id) VALUES (:id, :org)", id=workspace_id, org=org_id)
    return Tenant(org_id, workspace_id)


def add_capture(
    db: Any,
    workspace_id: uuid.UUID,
    method: str,
    path: str,
    *,
    minutes_ago: float = 1.0,
    status: int = 200,
    request_body: str | None = '{"q": 1}',
    response_body: str | None = '{"id": 1, "extra": true}',
    request_encoding: str = "utf8",
    response_encoding: str = "utf8",
) -> None:
    db.run(
        """INSERT INTO runtime_captures (workspace_id, occurred_at, method, path, status_code, request_body,
               request_body_encoding, response_body, response_body_encoding)
           VALUES (:ws, now() - make_interval(secs => :secs), :method, :path, :status,
                   :req, :req_enc, :resp, :resp_enc)""",
        ws=workspace_id,
        secs=minutes_ago * 60.0,
        method=method,
        path=path,
        status=status,
        req=request_body,
        req_enc=request_encoding,
        resp=response_body,
        resp_enc=response_encoding,
    )


def set_org_setting(db: Any, org_id: uuid.UUID, key: str, value: Any) -> None:
    db.run(
        """INSERT INTO org_settings (org_id, setting_key, setting_value) VALUES (:org, :key, CAST(:value AS jsonb))
           ON CONFLICT (org_id, setting_key) DO UPDATE SET setting_value = EXCLUDED.setting_value""",
        org=org_id,
        key=key,
        value=json.dumps(value),
    )


def tokens_used(db: Any, org_id: uuid.UUID) -> int:
    rows = db.run("SELECT coalesce(sum(ai_tokens_used), 0) FROM usage_counters WHERE org_id = :org", org=org_id)
    return int(rows[0][0])
