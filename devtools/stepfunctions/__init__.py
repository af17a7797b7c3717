"""State machines of ``template.yaml`` executed on aws-local-stepfunctions (an ASL interpreter on npm).

The definition is read from the template (``DefinitionSubstitutions`` resolved to local function
ARNs) and run by ``run.mjs`` under Node; its Lambda tasks invoke the functions through the Lambda
Invoke API of the local stack (:mod:`devtools.local_api`), so the real handlers answer them.
``make run-state-machine INPUT=...`` does this against the stack of ``make run``; the tests do it
against theirs. Node's dependencies come from ``package-lock.json`` (``npm ci``, run by the Makefile).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.handlers import load_template
from devtools.local_api import LOCAL_FUNCTION_ARN

HERE = Path(__file__).resolve().parent
RUNNER = HERE / "run.mjs"
DEFAULT_MACHINE = "ScoreSpecStateMachine"
# Step Functions' limit on the data a state receives or passes on.
MAX_STATE_PAYLOAD_BYTES = 256 * 1024
_SUBSTITUTION = re.compile(r"\$\{(\w+)\}")


def _local_value(value: Any) -> str:
    """A ``DefinitionSubstitutions`` value as it resolves locally (functions by their local ARN)."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        if attribute != "Arn":
            raise ValueError(f"Unsupported substitution Fn::GetAtt {resource}.{attribute}")
        return LOCAL_FUNCTION_ARN.format(name=resource)
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"Unsupported substitution value {value!r}")


def _substitute(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, str):
        return _SUBSTITUTION.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [_substitute(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _substitute(item, values) for key, item in node.items()}
    return node


def state_machine_definition(logical_id: str = DEFAULT_MACHINE, template: dict[str, Any] | None = None) -> Any:
    """The ASL of ``logical_id`` in ``template.yaml``, substitutions resolved to local ARNs."""
    properties = (template if template is not None else load_template())["Resources"][logical_id]["Properties"]
    values = {name: _local_value(value) for name, value in (properties.get("DefinitionSubstitutions") or {}).items()}
    return _substitute(properties["Definition"], values)


@dataclass
class Execution:
    """How an execution ended, what each Lambda task was sent, and the interpreter's event log."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def payloads(self) -> Iterator[Any]:
        """Every piece of data that passed between states: state inputs and outputs, task parameters."""
        yield from (task["parameters"] for task in self.tasks)
        for event in self.events:
            state = event.get("state") or {}
            yield from (state[key] for key in ("input", "output") if key in state)
            yield from (event[key] for key in ("input", "output") if key in event)


def payload_bytes(value: Any) -> int:
    """Size of ``value`` as Step Functions counts it: its UTF-8 JSON text."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def node_command() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("Node.js (>= 20) is needed to run state machines: install it and run `make pytest`")
    if not (HERE / "node_modules" / "aws-local-stepfunctions").is_dir():
        raise RuntimeError(f"Node dependencies missing: run `npm ci` in {HERE} (the Makefile does)")
    return node


def run_state_machine(
    execution_input: Any,
    *,
    lambda_endpoint: str,
    definition: Any = None,
    retry_interval_ms: int | None = None,
    timeout_s: float = 300.0,
) -> Execution:
    """One execution of ``definition`` (default: ScoreSpecStateMachine of the template).

    ``retry_interval_ms`` replaces every Lambda task's Retry wait (tests keep retries short).
    """
    request = {
        "definition": definition if definition is not None else state_machine_definition(),
        "input": execution_input,
        "lambdaEndpoint": lambda_endpoint,
        "retryIntervalMs": retry_interval_ms,
    }
    completed = subprocess.run(
        [node_command(), str(RUNNER)],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=HERE,
        timeout=timeout_s,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"run.mjs failed ({completed.returncode}): {completed.stderr.decode(errors='replace')}")
    result = json.loads(completed.stdout)
    return Execution(
        status=result["status"],
        output=result.get("output"),
        error=result.get("error"),
        cause=result.get("cause"),
        tasks=result.get("tasks", []),
        events=result.get("events", []),
    )
