"""Bounded parsing: a spec's text to a JSON-shaped tree, or None (DESIGN §7.2).

JSON goes through ``json.loads``. YAML goes through libyaml with an event pre-pass that counts
nesting depth (libyaml's composer recurses in C and crashes the process on deeply nested input),
then a walk that refuses alias bombs and recursive aliases and turns keys and scalars into what
JSON holds. Refused and malformed texts are not documents: the caller sees None, never an error.
"""

from __future__ import annotations

import json
from typing import Any

from service.drift.models import MAX_SPEC_EXCERPT_CHARS
from service.observability import logger

# The same bound however the text arrives: inline (the request model's) or from S3.
MAX_DOCUMENT_CHARS = MAX_SPEC_EXCERPT_CHARS
# YAML nesting deeper than this is refused before libyaml composes it (real documents: < 50).
MAX_YAML_DEPTH = 500
# A YAML document whose aliases expand it beyond both bounds is an alias bomb.
ALIAS_EXPANSION_FACTOR = 10
ALIAS_EXPANSION_FLOOR = 1_000_000


class _Refused(Exception):
    """The text is YAML we will not build (too deep, alias bomb, recursive)."""


def parse_tree(text: str) -> Any:
    """The JSON or YAML tree of ``text``, or None when it cannot be a document or is refused."""
    # Cheap refusal for texts that cannot be a document (an excerpt in prose, a bare schema).
    if "paths" not in text or ("openapi" not in text and "swagger" not in text):
        return None
    try:
        return json.loads(text) if text.lstrip()[:1] == "{" else _load_yaml(text)
    except _Refused as refusal:
        logger.warning("spec document refused", extra={"reason": str(refusal), "chars": len(text)})
        return None
    except (ValueError, RecursionError, MemoryError, TypeError):
        return None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError and anything libyaml raises: not a document
        logger.info("spec text is not a document", extra={"error": type(exc).__name__})
        return None


def _load_yaml(text: str) -> Any:
    import yaml  # lazily: JSON documents and cold starts do not pay for it

    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    depth = 0
    starts = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, starts):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_YAML_DEPTH}")
        elif isinstance(event, ends):
            depth -= 1
    root = yaml.load(text, Loader=loader)
    _normalise_yaml(root)
    return root


def _normalise_yaml(root: Any) -> None:
    """Refuse recursive or alias-bomb structures; make keys and scalars JSON-serialisable.

    libyaml shares aliased nodes, so a bomb is small in memory and explodes only when walked or
    serialised. One walk with an identity memo computes the expanded size without expanding.
    """
    if not isinstance(root, dict | list):
        return
    expanded: dict[int, int] = {}  # id -> expanded node count, once complete
    on_path: set[int] = set()
    distinct = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        node_id = id(node)
        if done:
            on_path.discard(node_id)
            children = node.values() if isinstance(node, dict) else node
            expanded[node_id] = 1 + sum(
                expanded[id(child)] if isinstance(child, dict | list) else 1 for child in children
            )
            continue
        if node_id in expanded:
            continue
        if node_id in on_path:
            raise _Refused("recursive alias")
        on_path.add(node_id)
        distinct += 1 + len(node)
        if isinstance(node, dict):
            _normalise_keys(node)
            for key, value in node.items():
                if not isinstance(value, dict | list | str | int | float | bool) and value is not None:
                    node[key] = str(value)
        else:
            for index, value in enumerate(node):
                if not isinstance(value, dict | list | str | int | float | bool) and value is not None:
                    node[index] = str(value)
        stack.append((node, True))
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if id(child) in on_path:
                    raise _Refused("recursive alias")
                if id(child) not in expanded:
                    stack.append((child, False))
    total = expanded[id(root)]
    if total > ALIAS_EXPANSION_FLOOR and total > ALIAS_EXPANSION_FACTOR * distinct:
        raise _Refused(f"aliases expand {distinct} nodes to {total}")


def _normalise_keys(node: dict[Any, Any]) -> None:
    """YAML keys may be ints (``200:``), booleans, dates: JSON keys are strings."""
    if all(isinstance(key, str) for key in node):
        return
    items = list(node.items())
    node.clear()
    for key, value in items:
        if isinstance(key, str):
            node[key] = value
        elif key is None or isinstance(key, bool | int | float):
            node[json.dumps(key)] = value
        else:
            node[str(key)] = value
