"""``make invoke FUNCTION=... EVENT=events/...``: ``sam local invoke -e`` without Docker.

The handler runs in this process with a Lambda context whose remaining time follows the
function's ``Timeout`` in ``template.yaml``. By default the call runs against the local stack
of ``make run`` (embedded PostgreSQL with the demo data, Secrets Manager on moto), started for
the call and stopped after it; its internal token is :data:`devtools.demo_data.DEMO_TOKEN`, the
one the ``events/`` files carry. ``--no-stack`` runs against the environment you provide instead
(your shell's variables, plus ``--env-vars`` in ``sam local invoke``'s format).

The reply JSON goes to stdout; logs go to stderr. A function error is printed as Lambda reports
it (``errorType`` is the exception class, which Step Functions matches) and exits with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.demo_data import DEMO_TOKEN
from devtools.handlers import FunctionSpec, find_function, handler_of
from devtools.lambda_context import LocalLambdaContext
from devtools.local_api import add_llm_arguments, apply_environment, llm_from_args, running_stack


@dataclass
class InvokeResult:
    """What Lambda returns: the handler's value, or the error it raised (``FunctionError``)."""

    payload: Any
    function_error: bool

    def to_json(self) -> str:
        return json.dumps(self.payload, indent=2)


def invoke_event(function: FunctionSpec, event: Any) -> InvokeResult:
    """Call the function's handler with ``event`` in the current environment."""
    context = LocalLambdaContext(
        function.logical_id,
        timeout_ms=function.timeout_ms,
        memory_limit_in_mb=function.memory_mb,
        log_group_name=f"/aws/lambda/{function.logical_id}",
    )
    try:
        return InvokeResult(handler_of(function)(event, context), function_error=False)
    except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an unhandled error
        return InvokeResult(
            {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            },
            function_error=True,
        )


def sam_env_vars(path: Path, function: FunctionSpec) -> dict[str, str]:
    """Variables of a ``sam local invoke --env-vars`` file: ``Parameters`` then the function's own."""
    data = json.loads(path.read_text())
    merged = {**data.get("Parameters", {}), **data.get(function.logical_id, {})}
    return {str(name): str(value) for name, value in merged.items()}


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Keep stdout for the reply: Powertools logs and EMF metrics go to stderr meanwhile."""
    from service.observability import logger

    handler = logger.registered_handler
    stream = getattr(handler, "stream", None)
    if stream is not None:
        handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if stream is not None:
            handler.setStream(stream)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("function", help="logical id (ContractDriftFunction) or folder (contract_drift)")
    parser.add_argument("event", type=Path, help="event file, e.g. events/contract_drift_http.json")
    parser.add_argument("--no-stack", action="store_true", help="use your environment, not the local stack")
    parser.add_argument("--env-vars", type=Path, help="JSON in sam local invoke's --env-vars format")
    parser.add_argument("--no-traverse", action="store_true", help="leave TRAVERSE_EXPERIMENTAL_ENABLED off")
    add_llm_arguments(parser)
    args = parser.parse_args(argv)
    try:
        function = find_function(args.function)
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    event = json.loads(args.event.read_text())
    overrides = sam_env_vars(args.env_vars, function) if args.env_vars else {}

    with _logs_to_stderr(), contextlib.ExitStack() as stack:
        if args.no_stack:
            apply_environment({**os.environ, **overrides})
        else:
            stack.enter_context(
                running_stack(token=DEMO_TOKEN, llm=llm_from_args(args), traverse_enabled=not args.no_traverse)
            )
            if overrides:
                apply_environment(overrides)
        result = invoke_event(function, event)
    print(result.to_json())
    return 1 if result.function_error else 0


if __name__ == "__main__":
    raise SystemExit(main())
