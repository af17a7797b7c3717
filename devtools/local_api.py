"""``make run``: both functions behind a local twin of API Gateway HTTP API, on embedded stand-ins.

What runs: an embedded PostgreSQL (the registry's stand-in tables, the service's migrations,
:mod:`devtools.demo_data`), a moto server for Secrets Manager reached through ``AWS_ENDPOINT_URL``
(the code path used in AWS), and an HTTP server on 127.0.0.1 that turns each request into a
payload format 2.0 event, calls the function's handler with a
:class:`~devtools.lambda_context.LocalLambdaContext` whose deadline is the function's ``Timeout``
from ``template.yaml``, and turns the reply back into HTTP.

The pieces compose: :func:`prepare_stack` configures an already-running Postgres and moto
(the tests pass their session fixtures), :func:`serve` serves whatever stack is installed, and
:func:`running_stack` starts and stops everything for ``make run`` and ``make invoke``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, unquote

from devtools import demo_data
from devtools.aws import (
    IDEMPOTENCY_TABLE,
    clear_idempotency_table,
    local_aws_env,
    put_secret,
    start_moto,
    use_local_aws,
)
from devtools.events import http_event
from devtools.fake_llm import LOOPBACK_NETWORKS
from devtools.handlers import ROOT, FunctionSpec, function_specs, handler_of
from devtools.lambda_context import LocalLambdaContext
from devtools.postgres import EmbeddedPostgres, start_postgres
from service.config import DEFAULT_BEDROCK_MODEL, DEFAULT_PLATFORM_MODEL

DEFAULT_PORT = 3000
TOKEN_SECRET = "local/internal-token"
PLATFORM_LLM_SECRET = "local/platform-llm-key"
BYOK_SECRET = "local/byok-passphrase"
DEFAULT_MODELS = {
    "openai": DEFAULT_PLATFORM_MODEL,
    "anthropic": "claude-3-5-haiku-latest",
    "bedrock": DEFAULT_BEDROCK_MODEL,
}
# boto3's own variable: where the Bedrock Runtime (Converse) is reached.
BEDROCK_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
# A blank secret is "not configured" (the template creates the platform secret as " " too).
UNSET_SECRET_VALUE = " "
# Local servers (Ollama, vLLM, llama.cpp) need no key, but a blank secret means "no provider".
KEYLESS_PLACEHOLDER = "local-no-key"
# Content types API Gateway passes through as text; everything else arrives base64-encoded.
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-www-form")
NOT_FOUND_BODY = b'{"message":"Not Found"}'
INTERNAL_ERROR_BODY = b'{"message":"Internal Server Error"}'
OPENAPI_PATH = "/openapi.json"
# The Lambda Invoke API (``sam local start-lambda``): ``{name}`` is a logical id or a function ARN.
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
LOCAL_FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:{name}"
# The demo spec as an S3 object, for requests by ``spec_s3_uri`` (events/score_spec_state_machine_s3.json).
DEMO_SPEC_BUCKET, DEMO_SPEC_KEY = "local-specs", "shop/openapi.yaml"


@dataclass
class LocalStack:
    """A configured stack: where things are, the token, and the functions' environment."""

    database_url: str
    aws_endpoint: str
    token: str
    env: dict[str, str]
    llm: demo_data.DemoLlm | None
    traverse_enabled: bool
    cleanup: list[Any] = field(default_factory=list)


def function_environment(
    database_url: str, aws_endpoint: str, llm: demo_data.DemoLlm | None, *, traverse_enabled: bool
) -> dict[str, str]:
    """What a deployed function sees (DESIGN §3), pointing at the local stand-ins.

    Both functions share one process here, so this is the union of their template variables.
    """
    env = {
        **local_aws_env(aws_endpoint),
        "INTERNAL_TOKEN_SECRET_ID": TOKEN_SECRET,
        "DATABASE_URL": database_url,
        "DATABASE_SECRET_ID": "",
        "DATABASE_IAM_AUTH": "false",  # no RDS Proxy locally
        "POWERTOOLS_METRICS_NAMESPACE": "ApiContractService",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
        "POWERTOOLS_SERVICE_NAME": "local-api",
        # No X-Ray daemon locally.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PLATFORM_LLM_SECRET_ID": PLATFORM_LLM_SECRET,
        "BYOK_ENCRYPTION_KEY_SECRET_ID": BYOK_SECRET,
        "PLATFORM_LLM_PROVIDER": llm.provider if llm else "openai",
        "PLATFORM_LLM_MODEL": llm.model if llm else DEFAULT_MODELS["openai"],
        "TRAVERSE_EXPERIMENTAL_ENABLED": "true" if traverse_enabled else "false",
        "TRAVERSE_HARD_WALL_MS": "5000",
        "TRAVERSE_MAX_HOPS": "3",
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE,
        "IDEMPOTENCY_TTL_SECONDS": "900",
        # The local fake LLM and an --llm-endpoint on this machine are BYOK targets on loopback
        # (the team org's key); set the variable yourself to reach an LLM elsewhere on your network.
        "BYOK_PRIVATE_NETWORKS_ALLOWED": os.environ.get("BYOK_PRIVATE_NETWORKS_ALLOWED", LOOPBACK_NETWORKS),
    }
    if llm and llm.provider == "bedrock":
        env[BEDROCK_ENDPOINT_VARIABLE] = llm.endpoint  # boto3 reads it; the role is moto's test identity
    elif llm:
        env["PLATFORM_LLM_ENDPOINT"] = llm.endpoint
    return env


def apply_environment(env: Mapping[str, str]) -> None:
    """Install ``env`` in this process and forget what the service cached from the old one."""
    from aws_lambda_powertools.utilities import parameters

    from service.config import get_settings
    from service.observability import logger

    os.environ.update(env)
    # In Lambda the variable is set before the logger exists; here the logger may be older.
    logger.append_keys(service=env.get("POWERTOOLS_SERVICE_NAME", "local"))
    for name in ("PLATFORM_LLM_ENDPOINT", BEDROCK_ENDPOINT_VARIABLE):
        if not env.get(name):
            os.environ.pop(name, None)
    get_settings.cache_clear()
    parameters.clear_caches()  # type: ignore[no-untyped-call]


def prepare_stack(
    postgres: EmbeddedPostgres,
    aws_endpoint: str,
    *,
    token: str | None = None,
    llm: demo_data.DemoLlm | None = None,
    traverse_enabled: bool = True,
) -> LocalStack:
    """Secrets in moto, demo rows in Postgres, and the environment to run the functions with.

    The demo rows are written as the registry owner (they are the registry's rows); the functions
    log in as their own least-privilege role (``postgres.url``).
    """
    use_local_aws(aws_endpoint)
    token = token or secrets.token_urlsafe(24)
    passphrase = secrets.token_urlsafe(24)
    put_secret(TOKEN_SECRET, token, aws_endpoint)
    put_secret(BYOK_SECRET, passphrase, aws_endpoint)
    put_secret(PLATFORM_LLM_SECRET, (llm.api_key or KEYLESS_PLACEHOLDER) if llm else UNSET_SECRET_VALUE, aws_endpoint)
    # The template's IdempotencyTable, empty: fresh demo data must not replay older replies.
    clear_idempotency_table(IDEMPOTENCY_TABLE, aws_endpoint)
    put_demo_spec(aws_endpoint)
    connection = postgres.connect()
    try:
        demo_data.load_demo_data(connection, byok_passphrase=passphrase, llm=llm)
    finally:
        connection.close()
    env = function_environment(postgres.url, aws_endpoint, llm, traverse_enabled=traverse_enabled)
    return LocalStack(postgres.url, aws_endpoint, token, env, llm, traverse_enabled)


def put_demo_spec(aws_endpoint: str) -> str:
    """:data:`demo_data.DEMO_SPEC_EXCERPT` at ``s3://local-specs/shop/openapi.yaml`` in moto; returns the URI."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_endpoint)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=DEMO_SPEC_BUCKET)
    s3.put_object(Bucket=DEMO_SPEC_BUCKET, Key=DEMO_SPEC_KEY, Body=demo_data.DEMO_SPEC_EXCERPT.encode())
    return f"s3://{DEMO_SPEC_BUCKET}/{DEMO_SPEC_KEY}"


@contextlib.contextmanager
def running_stack(
    *, token: str | None = None, llm: demo_data.DemoLlm | None = None, traverse_enabled: bool = True
) -> Iterator[LocalStack]:
    """Embedded Postgres + moto, prepared and installed in this process; all removed on exit."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    postgres = start_postgres()
    moto = None
    try:
        moto, endpoint = start_moto()
        stack = prepare_stack(postgres, endpoint, token=token, llm=llm, traverse_enabled=traverse_enabled)
        apply_environment(stack.env)
        yield stack
    finally:
        from service.db import database

        database.close()
        if moto is not None:
            moto.stop()
        postgres.stop()
        shutil.rmtree(postgres.base_dir, ignore_errors=True)


class FunctionInstance:
    """One warm instance of a function: a single thread, so calls run one at a time.

    The thread also keeps the instance's database connection (the layer keeps one per thread),
    as a warm Lambda keeps its connection between invocations.
    """

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=spec.logical_id)

    def _run(self, event: Any, started: threading.Event, request_id: str) -> Any:
        started.set()
        context = LocalLambdaContext(
            self.spec.logical_id,
            timeout_ms=self.spec.timeout_ms,
            memory_limit_in_mb=self.spec.memory_mb,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{self.spec.logical_id}",
        )
        return handler_of(self.spec)(event, context)

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """The handler's result; raises what it raised, or ``TimeoutError`` past ``Timeout``.

        A Lambda that runs out of time is killed; a thread cannot be, so a late call finishes in
        the background (the caller already got its error) and later calls wait for it.
        """
        started = threading.Event()
        future: Future[Any] = self._executor.submit(self._run, event, started, request_id or str(uuid.uuid4()))
        while not started.wait(0.5):
            if future.done():
                break
        try:
            return future.result(timeout=self.spec.timeout_s)
        except FutureTimeout:
            raise TimeoutError(f"Task timed out after {self.spec.timeout_s:.2f} seconds") from None

    def close(self) -> None:
        from service.db import database

        with contextlib.suppress(Exception):
            self._executor.submit(database.close).result(timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)


def _is_text(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith(TEXT_TYPES) or kind.endswith(("+json", "+xml"))


def event_from_request(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway HTTP API builds for this request."""
    path, _, query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    text = True
    if body:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            text = False
        text = text and _is_text(joined.get("content-type", ""))
    event = http_event(
        method, path, body if body else None, base64_body=not text, request_id=str(uuid.uuid4()), query=query
    )
    event["headers"] = joined
    event["requestContext"]["http"].update(sourceIp=source_ip, userAgent=joined.get("user-agent", ""))
    event["requestContext"]["domainName"] = joined.get("host", "localhost")
    if query:
        parameters: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
        event["queryStringParameters"] = parameters
    if cookies:
        event["cookies"] = cookies
    return event


def reply_to_http(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """How API Gateway turns a handler's result (format 2.0) into an HTTP response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return 200, [("content-type", "application/json")], json.dumps(result).encode()
    raw = result.get("body")
    body = b"" if raw is None else str(raw).encode()
    if result.get("isBase64Encoded") and raw is not None:
        body = base64.b64decode(str(raw))
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    if body and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    return int(result["statusCode"]), headers, body


class LocalApiServer(ThreadingHTTPServer):
    """The HTTP API twin: routes from ``template.yaml``, one warm instance per function."""

    daemon_threads = True

    def __init__(self, host: str, port: int, functions: dict[str, FunctionSpec], openapi: dict[str, Any]) -> None:
        self.instances = {spec.logical_id: FunctionInstance(spec) for spec in functions.values()}
        self.routes = {route: self.instances[spec.logical_id] for spec in functions.values() for route in spec.routes}
        self.openapi = openapi
        super().__init__((host, port), _RequestHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        for instance in self.instances.values():
            instance.close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"[local-api] {self.address_string()} {format % args}\n")

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, request_id: str | None = None) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if request_id:
            self.send_header("apigw-requestid", request_id)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        invocation = INVOKE_PATH.match(path) if self.command == "POST" else None
        if invocation:
            self._invoke_function(unquote(invocation["name"]), body)
            return
        if self.command == "GET" and path == OPENAPI_PATH:
            document = {**self.server.openapi, "servers": [{"url": self.server.url}]}
            self._send(200, [("content-type", "application/json")], json.dumps(document, indent=2).encode())
            return
        instance = self.server.routes.get((self.command, path))
        if instance is None:
            self._send(404, [("content-type", "application/json")], NOT_FOUND_BODY)
            return
        event = event_from_request(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        request_id = event["requestContext"]["requestId"]
        try:
            status, headers, reply = reply_to_http(instance.invoke(event))
        except Exception as exc:  # noqa: BLE001 - API Gateway answers 500 whatever the function raised
            sys.stderr.write(f"[{instance.spec.logical_id}] {type(exc).__name__}: {exc}\n")
            if not isinstance(exc, TimeoutError):
                traceback.print_exception(exc, file=sys.stderr)
            status, headers, reply = 500, [("content-type", "application/json")], INTERNAL_ERROR_BODY
        self._send(status, headers, reply, request_id)

    def _invoke_function(self, name: str, body: bytes) -> None:
        """Lambda's Invoke API: the body is the event, a raised error is a ``FunctionError``."""
        json_type = [("content-type", "application/json")]
        # A function ARN (optionally qualified) names the function by its part after ":function:".
        logical_id = name.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in name else name
        instance = self.server.instances.get(logical_id)
        if instance is None:
            message = f"Function not found: {LOCAL_FUNCTION_ARN.format(name=logical_id)}"
            error = json.dumps({"Type": "User", "message": message}).encode()
            self._send(404, [*json_type, ("x-amzn-ErrorType", "ResourceNotFoundException")], error)
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            message = f"Could not parse request body into json: {exc}"
            error = json.dumps({"Type": "User", "message": message}).encode()
            self._send(400, [*json_type, ("x-amzn-ErrorType", "InvalidRequestContentException")], error)
            return
        request_id = str(uuid.uuid4())
        headers = [*json_type, ("x-amzn-RequestId", request_id), ("X-Amz-Executed-Version", "$LATEST")]
        if self.headers.get("X-Amz-Invocation-Type") == "DryRun":
            self._send(204, headers, b"")
            return
        if self.headers.get("X-Amz-Invocation-Type") == "Event":  # asynchronous: accepted, run later
            threading.Thread(target=self._invoke_quietly, args=(instance, event, request_id), daemon=True).start()
            self._send(202, headers, b"")
            return
        try:
            reply = json.dumps(instance.invoke(event, request_id)).encode()
        except TimeoutError as exc:
            timed_out = {"errorType": "Sandbox.Timedout", "errorMessage": f"RequestId: {request_id} Error: {exc}"}
            self._send(200, [*headers, ("X-Amz-Function-Error", "Unhandled")], json.dumps(timed_out).encode())
            return
        except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an unhandled error
            sys.stderr.write(f"[{logical_id}] {type(exc).__name__}: {exc}\n")
            unhandled = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "requestId": request_id,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            self._send(200, [*headers, ("X-Amz-Function-Error", "Unhandled")], json.dumps(unhandled).encode())
            return
        self._send(200, headers, reply)

    @staticmethod
    def _invoke_quietly(instance: FunctionInstance, event: Any, request_id: str) -> None:
        with contextlib.suppress(Exception):
            instance.invoke(event, request_id)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815 - stdlib names

    def __getattr__(self, name: str) -> Any:
        """Any other verb (TRACE, PROPFIND, ...) is routed like API Gateway does: no route, 404 JSON.

        http.server answers a verb without a ``do_*`` method with its own 501 HTML page.
        """
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)


def serve(*, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> LocalApiServer:
    """Serve the stack installed in this process's environment, in a background thread.

    ``port=0`` picks a free port. The handlers read the environment when called, so a caller
    may install another stack (:func:`apply_environment`) while the server runs.
    """
    from devtools.openapi import build_openapi

    functions = function_specs()
    for spec in functions.values():
        handler_of(spec)  # import errors surface now, not on the first request
    server = LocalApiServer(host, port, functions, build_openapi())
    threading.Thread(target=server.serve_forever, name="local-api", daemon=True).start()
    return server


def curl_lines(stack: LocalStack, base_url: str) -> dict[str, str]:
    """A ready-to-paste ``curl`` per route, with the demo ids (drift's body is the events file)."""
    auth = shlex.quote(f"Authorization: Bearer {stack.token}")
    drift_body = Path(os.path.relpath(ROOT / "events" / "contract_drift_direct.json"))
    traverse_body = shlex.quote(json.dumps(demo_data.TRAVERSE_REQUEST, separators=(",", ":")))
    json_header = "-H 'Content-Type: application/json'"
    return {
        "ContractDriftFunction": f"curl -sS -X POST {base_url}/api/v1/internal/contract-diff/score "
        f"-H {auth} {json_header} --data @{shlex.quote(str(drift_body))}",
        "TraverseAnswerFunction": f"curl -sS -X POST {base_url}/v1/traverse_answer "
        f"-H {auth} {json_header} -d {traverse_body}",
    }


def banner(stack: LocalStack, base_url: str) -> str:
    """What ``make run`` prints once everything is up."""
    specs = function_specs()
    lines = [f"Local API (API Gateway HTTP API twin) on {base_url}"]
    for spec in specs.values():
        for method, path in spec.routes:
            lines.append(f"  {method:<5}{base_url}{path}  -> {spec.logical_id} (Timeout {spec.timeout_s} s)")
    lines.append(f"  GET  {base_url}{OPENAPI_PATH}  -> OpenAPI 3 of both routes")
    lines.append(
        f"  POST {base_url}/2015-03-31/functions/{{name}}/invocations  -> Lambda Invoke API "
        f"({', '.join(specs)}; aws lambda invoke --endpoint-url {base_url})"
    )
    lines += [
        "",
        f"PostgreSQL (embedded, demo data): {stack.database_url}",
        f"Secrets Manager, DynamoDB (moto): {stack.aws_endpoint}",
        f"Internal token:                   {stack.token}",
    ]
    if stack.llm:
        llm = stack.llm
        where = f"{llm.endpoint} ({BEDROCK_ENDPOINT_VARIABLE})" if llm.provider == "bedrock" else llm.endpoint
        lines.append(f"LLM:                              {llm.provider} {llm.model} at {where}")
    else:
        lines += [
            "LLM:                              none configured. Drift calls of the pro and team demo orgs answer",
            '    500 INTERNAL_ERROR "No platform LLM provider is configured (PLATFORM_LLM_SECRET_ID)".',
            "    Use one: make run ARGS='--llm-endpoint URL [--llm-provider openai|anthropic] [--llm-model M]",
            "    [--llm-key K]' (any OpenAI-compatible or Anthropic base URL, without /v1), or",
            "    make run ARGS='--llm-provider bedrock --bedrock-endpoint URL [--llm-model ID]' (a Converse server).",
        ]
    gate = "on" if stack.traverse_enabled else "off (410 Gone; drop --no-traverse to switch it on)"
    lines += [
        f"traverse_answer gate:             {gate}",
        "",
        "Demo organizations (each workspace has fresh captures that drift from the demo spec):",
        f"  free  org {demo_data.FREE_ORG_ID}  workspace {demo_data.FREE_WORKSPACE_ID}  (AI disabled: 403)",
        f"  pro   org {demo_data.PRO_ORG_ID}  workspace {demo_data.PRO_WORKSPACE_ID}  (platform key)",
        f"  team  org {demo_data.TEAM_ORG_ID}  workspace {demo_data.TEAM_WORKSPACE_ID}  " + team_byok_note(stack.llm),
        "",
        "Try (the pro org):",
        *curl_lines(stack, base_url).values(),
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


def team_byok_note(llm: demo_data.DemoLlm | None) -> str:
    if llm is None:
        return "(BYOK key stored disabled: no LLM given; uses the platform key)"
    if llm.provider == "bedrock":
        return "(BYOK key stored disabled: Bedrock is platform-only; uses the platform model)"
    return "(BYOK key, encrypted)"


def llm_from_args(args: argparse.Namespace) -> demo_data.DemoLlm | None:
    provider = str(args.llm_provider or "openai").lower()
    if provider not in DEFAULT_MODELS:
        raise SystemExit(f"--llm-provider must be one of {', '.join(DEFAULT_MODELS)}")
    endpoint = (args.bedrock_endpoint or args.llm_endpoint) if provider == "bedrock" else args.llm_endpoint
    if not endpoint:
        if provider == "bedrock":
            raise SystemExit("--llm-provider bedrock needs --bedrock-endpoint URL (a Bedrock Runtime Converse server)")
        return None
    return demo_data.DemoLlm(
        endpoint=endpoint,
        provider=provider,
        model=args.llm_model or DEFAULT_MODELS[provider],
        api_key=args.llm_key or KEYLESS_PLACEHOLDER,
    )


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--llm-endpoint", default=env("PLATFORM_LLM_ENDPOINT"), help="LLM base URL, without /v1")
    parser.add_argument(
        "--llm-provider", default=env("PLATFORM_LLM_PROVIDER"), help="openai (default), anthropic or bedrock"
    )
    parser.add_argument(
        "--bedrock-endpoint",
        default=env(BEDROCK_ENDPOINT_VARIABLE),
        help=f"with --llm-provider bedrock: the Bedrock Runtime URL ({BEDROCK_ENDPOINT_VARIABLE})",
    )
    parser.add_argument("--llm-model", default=env("PLATFORM_LLM_MODEL"), help="model name")
    parser.add_argument("--llm-key", default=env("PLATFORM_LLM_API_KEY"), help="API key (env PLATFORM_LLM_API_KEY)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (default 3000)")
    parser.add_argument("--no-traverse", action="store_true", help="leave TRAVERSE_EXPERIMENTAL_ENABLED off (410)")
    add_llm_arguments(parser)
    args = parser.parse_args(argv)
    llm = llm_from_args(args)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Explicit, because a shell that starts us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print("Starting embedded PostgreSQL and moto ...", flush=True)
    with running_stack(llm=llm, traverse_enabled=not args.no_traverse) as stack:
        try:
            server = serve(port=args.port)
        except OSError as exc:
            print(f"Cannot listen on 127.0.0.1:{args.port} ({exc}); try --port", file=sys.stderr)
            return 1
        print(banner(stack, server.url), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nStopping ...", flush=True)
        finally:
            server.close()
    print("Stopped: PostgreSQL and moto shut down, temporary files removed.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
