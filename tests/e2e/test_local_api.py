"""The local API over real HTTP on 127.0.0.1, as a newcomer and the test runner use it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from devtools import demo_data
from devtools.handlers import ROOT, FunctionSpec, find_function, function_specs, load_template
from devtools.local_api import (
    BEDROCK_ENDPOINT_VARIABLE,
    FunctionInstance,
    LocalApiServer,
    add_llm_arguments,
    banner,
    curl_lines,
    event_from_request,
    function_environment,
    llm_from_args,
    reply_to_http,
)
from devtools.openapi import build_openapi
from tests.e2e.conftest import MakeStack

SCORE_PATH = "/api/v1/internal/contract-diff/score"
TRAVERSE_PATH = "/v1/traverse_answer"
NO_PROVIDER = "No platform LLM provider is configured (PLATFORM_LLM_SECRET_ID)"


def http(
    server: LocalApiServer,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], Any]:
    data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(server.url + path, data=data, method=method)
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None


def drift_body(org: Any = demo_data.PRO_ORG_ID, workspace: Any = demo_data.PRO_WORKSPACE_ID) -> dict[str, Any]:
    return demo_data.drift_request(org, workspace)


DEMO_LABELS = sorted(f"{e['method']} {e['path']}" for e in demo_data.DEMO_ENDPOINTS)


def test_drift_with_a_configured_llm_scores_the_demo_captures(api_server: LocalApiServer, make_stack: MakeStack):
    stack = make_stack(llm=True)
    status, headers, body = http(api_server, "POST", SCORE_PATH, drift_body(), token=stack.token)
    assert status == 200, body
    assert body["provider"] == "platform" and body["no_traffic"] is False
    assert sorted(f["endpoint"] for f in body["findings"]) == DEMO_LABELS
    # Concrete captures found their templates; /users/me is the spec's own endpoint, not a sample.
    owned = [c for c in demo_data.DEMO_CAPTURES if c[1] != "/users/me"]
    assert body["samples_used"] == len(owned) == len(demo_data.DEMO_CAPTURES) - 1
    assert body["endpoints_not_in_contract"] == []
    assert headers["content-type"].startswith("application/json")
    assert headers["apigw-requestid"]


def test_byok_org_uses_its_own_key_and_free_org_is_refused(api_server: LocalApiServer, make_stack: MakeStack):
    stack = make_stack(llm=True)
    status, _, body = http(
        api_server,
        "POST",
        SCORE_PATH,
        drift_body(demo_data.TEAM_ORG_ID, demo_data.TEAM_WORKSPACE_ID),
        token=stack.token,
    )
    assert (status, body["provider"]) == (200, "byok"), body
    status, _, body = http(
        api_server,
        "POST",
        SCORE_PATH,
        drift_body(demo_data.FREE_ORG_ID, demo_data.FREE_WORKSPACE_ID),
        token=stack.token,
    )
    assert (status, body["error_code"]) == (403, "RESOURCE_LIMIT_EXCEEDED"), body


def test_drift_without_an_llm_says_no_provider_is_set(api_server: LocalApiServer, make_stack: MakeStack):
    stack = make_stack(llm=False)
    for org, workspace in (
        (demo_data.PRO_ORG_ID, demo_data.PRO_WORKSPACE_ID),
        (demo_data.TEAM_ORG_ID, demo_data.TEAM_WORKSPACE_ID),
    ):
        status, headers, body = http(api_server, "POST", SCORE_PATH, drift_body(org, workspace), token=stack.token)
        assert status == 500
        assert body == {
            "error": NO_PROVIDER,
            "error_code": "INTERNAL_ERROR",
            "status": 500,
            "request_id": headers["apigw-requestid"],
            "details": None,
        }


def _llm_args(*argv: str) -> Any:
    import argparse

    parser = argparse.ArgumentParser()
    add_llm_arguments(parser)
    return parser.parse_args(list(argv))


def test_bedrock_from_the_command_line_scores_through_converse(
    api_server: LocalApiServer, make_stack: MakeStack, llm_server: Any, monkeypatch: pytest.MonkeyPatch
):
    """``make run ARGS='--llm-provider bedrock --bedrock-endpoint URL'``: the platform model is the
    Converse server at URL; the team org's BYOK key stays disabled (Bedrock is platform-only)."""
    monkeypatch.delenv(BEDROCK_ENDPOINT_VARIABLE, raising=False)
    monkeypatch.delenv("PLATFORM_LLM_PROVIDER", raising=False)
    chosen = llm_from_args(_llm_args("--llm-provider", "bedrock", "--bedrock-endpoint", llm_server.base_url))
    assert chosen is not None and (chosen.provider, chosen.endpoint) == ("bedrock", llm_server.base_url)
    with pytest.raises(SystemExit):
        llm_from_args(_llm_args("--llm-provider", "bedrock"))
    stack = make_stack(provider="bedrock")
    assert stack.env[BEDROCK_ENDPOINT_VARIABLE] == llm_server.base_url and "PLATFORM_LLM_ENDPOINT" not in stack.env
    assert f"bedrock {chosen.model} at {llm_server.base_url}" in banner(stack, api_server.url)
    for org, workspace in (
        (demo_data.PRO_ORG_ID, demo_data.PRO_WORKSPACE_ID),
        (demo_data.TEAM_ORG_ID, demo_data.TEAM_WORKSPACE_ID),
    ):
        status, _, body = http(api_server, "POST", SCORE_PATH, drift_body(org, workspace), token=stack.token)
        assert (status, body["provider"]) == (200, "platform"), body
        assert sorted(f["endpoint"] for f in body["findings"]) == DEMO_LABELS
    assert [request.wire for request in llm_server.requests] == ["bedrock", "bedrock"]
    assert all("toolConfig" in request.body for request in llm_server.requests)


def test_banner_tells_a_newcomer_what_runs(api_server: LocalApiServer, make_stack: MakeStack):
    text = banner(make_stack(llm=False), api_server.url)
    assert f"{api_server.url}{SCORE_PATH}" in text and f"{api_server.url}{TRAVERSE_PATH}" in text
    assert "none configured" in text and NO_PROVIDER in text
    assert str(demo_data.PRO_ORG_ID) in text and "curl" in text


@pytest.mark.parametrize("enabled", [True, False])
def test_traverse_answers_by_the_gate(api_server: LocalApiServer, make_stack: MakeStack, enabled: bool):
    stack = make_stack(traverse_enabled=enabled)
    status, _, body = http(api_server, "POST", TRAVERSE_PATH, demo_data.TRAVERSE_REQUEST, token=stack.token)
    if not enabled:
        assert (status, body["schema"]) == (410, "mnem.v1.err"), body
        return
    assert (status, body["schema"]) == (200, "mnem.v1.traverse_answer"), body
    seeds = {node["id"] for node in body["hops"][0]["nodes"]}
    assert str(demo_data.CHECKOUT_NODE_ID) in seeds
    every_node = {node["summary"] for hop in body["hops"] for node in hop["nodes"]}
    assert not any("retired" in summary for summary in every_node)


@pytest.mark.parametrize("path", [SCORE_PATH, TRAVERSE_PATH])
def test_wrong_token_is_a_400_envelope(api_server: LocalApiServer, make_stack: MakeStack, path: str):
    make_stack()
    status, headers, body = http(api_server, "POST", path, {}, token="not-the-token")
    assert status == 400
    assert (body["error"], body["error_code"], body["request_id"]) == (
        "Not found",
        "INVALID_REQUEST",
        headers["apigw-requestid"],
    )


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/nope"), ("GET", SCORE_PATH), ("POST", TRAVERSE_PATH + "/"), ("DELETE", "/")]
)
def test_unknown_routes_are_404_as_api_gateway_answers(
    api_server: LocalApiServer, make_stack: MakeStack, method: str, path: str
):
    stack = make_stack()
    assert http(api_server, method, path, {}, token=stack.token)[::2] == (404, {"message": "Not Found"})


def test_binary_bodies_arrive_base64_encoded_and_are_decoded(api_server: LocalApiServer, make_stack: MakeStack):
    stack = make_stack()
    raw = json.dumps(drift_body()).encode()
    status, _, body = http(
        api_server, "POST", SCORE_PATH, raw, token=stack.token, content_type="application/octet-stream"
    )
    assert (status, body["provider"]) == (200, "platform"), body


def test_openapi_is_served(api_server: LocalApiServer, make_stack: MakeStack):
    make_stack()
    status, _, document = http(api_server, "GET", "/openapi.json")
    assert status == 200
    assert {SCORE_PATH, TRAVERSE_PATH} <= set(document["paths"])
    assert document["servers"] == [{"url": api_server.url}]
    assert document["paths"] == build_openapi()["paths"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_printed_curl_lines_work(api_server: LocalApiServer, make_stack: MakeStack):
    stack = make_stack(llm=True)
    lines = curl_lines(stack, api_server.url)
    assert all(line in banner(stack, api_server.url) for line in lines.values())
    replies = {
        name: json.loads(subprocess.run(line, shell=True, check=True, capture_output=True, cwd=os.getcwd()).stdout)
        for name, line in lines.items()
    }
    assert sorted(f["endpoint"] for f in replies["ContractDriftFunction"]["findings"]) == DEMO_LABELS
    assert replies["TraverseAnswerFunction"]["schema"] == "mnem.v1.traverse_answer"


def test_events_are_built_like_api_gateway():
    headers = [("Content-Type", "image/png"), ("X-Multi", "a"), ("X-Multi", "b"), ("Cookie", "a=1; b=2")]
    event = event_from_request("POST", "/p?x=1&x=2&y=", headers, b"\x89PNG\xff", "10.0.0.1")
    assert event["version"] == "2.0" and event["routeKey"] == "POST /p" and event["rawQueryString"] == "x=1&x=2&y="
    assert event["headers"] == {"content-type": "image/png", "x-multi": "a,b"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"\x89PNG\xff"
    assert event["requestContext"]["http"]["sourceIp"] == "10.0.0.1"
    text = event_from_request("POST", "/p", [("content-type", "application/json")], b'{"a": 1}', "127.0.0.1")
    assert (text["isBase64Encoded"], text["body"]) == (False, '{"a": 1}')
    assert event_from_request("GET", "/p", [], b"", "127.0.0.1")["body"] is None


def test_replies_are_turned_into_http_as_api_gateway_does():
    assert reply_to_http({"statusCode": 201, "body": "aGk=", "isBase64Encoded": True, "cookies": ["c=1"]}) == (
        201,
        [("set-cookie", "c=1"), ("content-type", "application/json")],
        b"hi",
    )
    # Format 2.0: a result without statusCode is a 200 JSON body.
    assert reply_to_http({"ok": True}) == (200, [("content-type", "application/json")], b'{"ok": true}')


def test_timeouts_and_environment_come_from_the_template(tmp_path: Path, make_stack: MakeStack):
    template = load_template()
    specs = function_specs(template)
    assert set(specs) == {"ContractDriftFunction", "TraverseAnswerFunction"}
    env = function_environment("postgresql://x", "http://127.0.0.1:1", None, traverse_enabled=True)
    for spec in specs.values():
        assert spec.timeout_s == template["Globals"]["Function"]["Timeout"]
        assert spec.environment_names - {"PLATFORM_LLM_ENDPOINT"} <= set(env)
    # A warm instance hands its handler a context whose deadline is the function's Timeout.
    (tmp_path / "app.py").write_text(
        "def lambda_handler(event, context):\n"
        "    return {'remaining': context.get_remaining_time_in_millis(), 'name': context.function_name}\n"
    )
    spec = FunctionSpec("ProbeFunction", tmp_path, "app.lambda_handler", 7, 128, (), frozenset())
    instance = FunctionInstance(spec)
    try:
        result = instance.invoke({})
    finally:
        instance.close()
    assert result["name"] == "ProbeFunction"
    assert 0 < result["remaining"] <= 7000
    assert (
        find_function("contract_drift") is specs["ContractDriftFunction"]
        or find_function("contract_drift") == specs["ContractDriftFunction"]
    )
    assert ROOT.joinpath("template.yaml").exists()
