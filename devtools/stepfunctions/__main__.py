"""``make run-state-machine INPUT=events/score_spec_state_machine.json``: one local execution.

Starts the stack of ``make run`` (embedded PostgreSQL with the demo data, moto) and its HTTP
server with the Lambda Invoke API on a free port, runs ScoreSpecStateMachine from
``template.yaml`` on aws-local-stepfunctions against it, and prints the execution's output JSON
(stdout; logs go to stderr). A failed execution prints its error and cause and exits with 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from devtools.demo_data import DEMO_TOKEN
from devtools.invoke import _logs_to_stderr
from devtools.local_api import add_llm_arguments, llm_from_args, running_stack, serve
from devtools.stepfunctions import DEFAULT_MACHINE, run_state_machine, state_machine_definition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make run-state-machine", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("input", type=Path, help="execution input, e.g. events/score_spec_state_machine.json")
    parser.add_argument("--machine", default=DEFAULT_MACHINE, help="logical id in template.yaml")
    add_llm_arguments(parser)
    args = parser.parse_args(argv)
    execution_input = json.loads(args.input.read_text())
    definition = state_machine_definition(args.machine)

    with _logs_to_stderr():  # Powertools logs and metrics: stdout is for the output
        print("Starting embedded PostgreSQL and moto ...", flush=True)
        with running_stack(token=DEMO_TOKEN, llm=llm_from_args(args)):
            server = serve(port=0)
            try:
                print(f"Running {args.machine} on aws-local-stepfunctions against {server.url} ...", flush=True)
                execution = run_state_machine(execution_input, lambda_endpoint=server.url, definition=definition)
            finally:
                server.close()
    if not execution.succeeded:
        cause: object = execution.cause
        with contextlib.suppress(KeyError, TypeError, ValueError):  # a Lambda error's cause is its JSON error payload
            cause = json.loads(str(cause))["errorMessage"]
        print(json.dumps({"status": execution.status, "error": execution.error, "cause": cause}, indent=2))
        return 1
    print(json.dumps(execution.output, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
