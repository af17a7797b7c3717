"""API Gateway HTTP API (payload format 2.0) events, as the service receives them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    base64_body: bool = False,
    request_id: str | None = None,
    query: str = "",
) -> dict[str, Any]:
    """An event like API Gateway builds for ``method path`` (``body`` JSON-encoded unless str/bytes)."""
    all_headers = {"content-type": "application/json", "user-agent": "devtools"}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    if body is None:
        raw: bytes | None = None
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode()
    else:
        raw = json.dumps(body).encode()
    encoded = base64_body and raw is not None
    return {
        "version": "2.0",
        "routeKey": f"{method.upper()} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": all_headers.get("user-agent", ""),
            },
            "requestId": request_id or str(uuid.uuid4()),
            "routeKey": f"{method.upper()} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": None
        if raw is None
        else (base64.b64encode(raw).decode() if encoded else raw.decode("utf-8", "replace")),
        "isBase64Encoded": bool(encoded),
    }


def reply_json(reply: dict[str, Any]) -> Any:
    """The JSON body of a proxy reply."""
    body = reply.get("body") or "null"
    if reply.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)
