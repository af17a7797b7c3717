"""One OpenAPI 3 document of both routes, generated from the resolvers' own models (Powertools).

``python -m devtools.openapi`` writes ``docs/openapi.json``; ``--check`` only says whether the
committed file is stale. The local API serves the same document at ``GET /openapi.json``.

Each function has its own resolver (``service.api.<name>_api.app``); their documents are merged.
Two corrections make the document say what the service really answers, where Powertools'
defaults differ: validation failures are 400 ``VALIDATION_FAILED`` (never FastAPI-style 422),
and error statuses carry each route's error envelope, not its success model.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from devtools.handlers import ROOT

OUTPUT_PATH = ROOT / "docs" / "openapi.json"
RESOLVER_MODULES = ("service.api.drift_api", "service.api.traverse_api")
TITLE = "API contract service"
DESCRIPTION = (
    "Contract-drift scorer and traverse_answer behind one API Gateway HTTP API. "
    "Both routes need `Authorization: Bearer <internal token>`; a missing or wrong token is a 400."
)
SCHEMA_REF = "#/components/schemas/"
# The envelope each route's errors carry (DESIGN §5 and §6), as ``module:Model``.
ERROR_MODELS = {
    "/api/v1/internal/contract-diff/score": "service.drift.models:ErrorReply",
    "/v1/traverse_answer": "service.traverse.models:TraverseError",
}


def _version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def _resolver_documents() -> list[dict[str, Any]]:
    """The document of every resolver that exists (traverse's may not have landed yet)."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    documents = []
    for name in RESOLVER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        raw = module.app.get_openapi_json_schema(
            title=TITLE,
            version=_version(),
            description=DESCRIPTION,
            security_schemes={"bearerToken": HTTPBearer(scheme="bearer", description="The internal token")},
            security=[{"bearerToken": []}],
        )
        documents.append(json.loads(raw))
    return documents


def merge_documents(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """Paths and component schemas of every document in one (a name clash must be identical)."""
    merged: dict[str, Any] = {key: value for key, value in documents[0].items() if key not in ("paths", "components")}
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    tags: dict[str, Any] = {}
    for document in documents:
        for path, item in document.get("paths", {}).items():
            if path in paths:
                raise ValueError(f"Two resolvers document {path}")
            paths[path] = item
        for section, entries in document.get("components", {}).items():
            bucket = components.setdefault(section, {})
            for name, value in entries.items():
                if name in bucket and bucket[name] != value:
                    raise ValueError(f"Component {section}/{name} differs between resolvers")
                bucket[name] = value
        for tag in document.get("tags", []):
            tags.setdefault(tag["name"], tag)
    merged["paths"] = paths
    merged["components"] = components
    if tags:
        merged["tags"] = list(tags.values())
    return merged


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(SCHEMA_REF) :]} if str(node.get("$ref", "")).startswith(SCHEMA_REF) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _used_schemas(document: dict[str, Any]) -> set[str]:
    schemas = document.get("components", {}).get("schemas", {})
    used = _refs(document["paths"])
    pending = list(used)
    while pending:
        for name in _refs(schemas.get(pending.pop(), {})) - used:
            used.add(name)
            pending.append(name)
    return used


def _error_model(path: str) -> type[BaseModel] | None:
    module_name, _, attribute = ERROR_MODELS.get(path, ":").partition(":")
    try:
        model: type[BaseModel] = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return None
    return model


def correct_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Drop 422 (the service answers 400) and give each route's error statuses its error envelope."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, item in document["paths"].items():
        model = _error_model(path)
        for operation in item.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            if model is None:
                continue
            schema = model.model_json_schema(ref_template=SCHEMA_REF + "{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas.setdefault(model.__name__, schema)
            for status, response in responses.items():
                if int(status) >= 400:
                    content = {"application/json": {"schema": {"$ref": f"{SCHEMA_REF}{model.__name__}"}}}
                    response["content"] = content
    used = _used_schemas(document)
    document["components"]["schemas"] = {name: value for name, value in sorted(schemas.items()) if name in used}
    return document


def build_openapi() -> dict[str, Any]:
    """The merged, corrected document of every resolver."""
    return correct_errors(merge_documents(_resolver_documents()))


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.openapi", description="Write docs/openapi.json")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is not up to date")
    parser.add_argument("--output", type=Path, default=OUTPUT_PATH)
    args = parser.parse_args(argv)
    text = render(build_openapi())
    current = args.output.read_text() if args.output.exists() else None
    if args.check:
        if current != text:
            print(f"{args.output} is stale: run python -m devtools.openapi", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
