"""The pieces a slice is assembled from, and what counts as prose in them.

A piece (an operation, a path's parameters, a reference's target) is serialised on demand as
compact JSON in two forms: *full*, and *lean* without prose (descriptions, examples,
``externalDocs`` and ``x-*`` extensions), each with the local refs it holds. Keys of maps whose
keys the author names (``properties``, ``schemas``, ...) are never prose, whatever they are called.
"""

from __future__ import annotations

import json
from typing import Any

from service.drift.spec.references import local_refs

PROSE_KEYS = frozenset({"description", "example", "examples", "externalDocs"})
# Maps whose keys are names chosen by the author (a property may be called "description" or
# "x-id"): their keys are never prose, their values are.
NAME_MAPS = frozenset(
    {
        "properties",
        "patternProperties",
        "definitions",
        "$defs",
        "dependentSchemas",
        "headers",
        "links",
        "encoding",
        "callbacks",
        "schemas",
        "parameters",
        "requestBodies",
        "responses",
        "securitySchemes",
        "securityDefinitions",
        "pathItems",
        "scopes",
        "variables",
    }
)
_UNSERIALISABLE = "[not serialisable]"


def dumps(value: Any) -> str:
    """Compact JSON as the slice holds it; a value that cannot be serialised becomes a marker."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (RecursionError, ValueError, TypeError):
        return json.dumps(_UNSERIALISABLE)


def _is_prose(key: Any) -> bool:
    return key in PROSE_KEYS or (isinstance(key, str) and key.startswith("x-"))


def without_prose(node: Any, name_map: bool = False) -> Any:
    """A copy of ``node`` without descriptions, examples, externalDocs and ``x-*`` extensions."""
    if not isinstance(node, dict | list):
        return node
    copy: Any = {} if isinstance(node, dict) else []
    stack: list[tuple[Any, Any, bool]] = [(node, copy, name_map)]
    while stack:
        source, target, names = stack.pop()
        if isinstance(source, dict):
            for key, value in source.items():
                if not names and _is_prose(key):
                    continue
                if isinstance(value, dict | list):
                    child: Any = {} if isinstance(value, dict) else []
                    target[key] = child
                    stack.append((value, child, not names and key in NAME_MAPS and isinstance(value, dict)))
                else:
                    target[key] = value
        else:
            for value in source:
                if isinstance(value, dict | list):
                    child = {} if isinstance(value, dict) else []
                    target.append(child)
                    stack.append((value, child, False))
                else:
                    target.append(value)
    return copy


class Part:
    """A piece of the slice (an operation, path parameters, a reference target), serialised on
    demand in its full and prose-free forms, with the local refs each form holds."""

    __slots__ = ("_full", "_lean", "_refs_full", "_refs_lean", "name_map", "node")

    def __init__(self, node: Any, name_map: bool) -> None:
        self.node = node
        self.name_map = name_map
        self._full: str | None = None
        self._refs_full: list[str] | None = None
        self._lean: str | None = None
        self._refs_lean: list[str] | None = None

    def text(self, lean: bool) -> str:
        if lean:
            self._make_lean()
            assert self._lean is not None
            return self._lean
        if self._full is None:
            self._full = dumps(self.node)
        return self._full

    def refs(self, lean: bool) -> list[str]:
        if lean:
            self._make_lean()
            assert self._refs_lean is not None
            return self._refs_lean
        if self._refs_full is None:
            self._refs_full = local_refs(self.node)
        return self._refs_full

    def _make_lean(self) -> None:
        if self._lean is None:
            lean = without_prose(self.node, self.name_map)
            self._lean, self._refs_lean = dumps(lean), local_refs(lean)
