"""Whole OpenAPI documents cut down to what the prompt needs (DESIGN §7.2).

A caller may send a whole OpenAPI 3.x or Swagger 2.0 document (JSON or YAML, up to 6,000,000
characters). The prompt gets a *slice*: the version, ``info.title``, the operations of the
considered endpoints (with their path-level parameters) and the transitive closure of the local
``$ref`` targets they use, serialised as compact JSON::

    {"openapi": "3.0.3", "info": {"title": "..."},
     "paths": {"/users/{id}": {"parameters": [...], "get": {...}}},
     "requested": {"GET /users/42": "GET /users/{id}"},          # only when they differ
     "referenced": {"#/components/schemas/User": {...}, ...}}    # keys are the $ref strings

When that is over the budget: prose goes first, then the deepest references, then operations are
reduced to skeletons (``operationId`` and parameter names); only then is the text cut.

Parsed documents are cached per warm process, keyed by content (a Step Functions map of 40
chunks of one request parses a 5.7 MB document once per warm instance). YAML goes through
libyaml with an event pre-pass (libyaml's composer recurses in C and crashes the process on
deeply nested input) and a walk that refuses alias bombs and recursive aliases.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from service.drift.models import Endpoint
from service.drift.spec.paths import (
    Segment,
    is_literal_path,
    segment_matches,
    segment_rank,
    shape_key,
    split_segment,
)
from service.observability import logger
from service.storable import is_storable

MAX_DOCUMENT_CHARS = 6_000_000
# YAML nesting deeper than this is refused before libyaml composes it (real documents: < 50).
MAX_YAML_DEPTH = 500
# A YAML document whose aliases expand it beyond both bounds is an alias bomb.
ALIAS_EXPANSION_FACTOR = 10
ALIAS_EXPANSION_FLOOR = 1_000_000
# Parsed documents kept per process: few, and bounded by their text's size (a parsed 5.7 MB
# JSON document holds about 60 MB of Python objects).
CACHE_MAX_ENTRIES = 4
CACHE_MAX_CHARS = 12_000_000
SLICES_PER_DOCUMENT = 32
TITLE_MAX_CHARS = 300
VERSION_MAX_CHARS = 32
CUT_MARKER = "…[slice cut to fit the budget]"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
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
_FINGERPRINT_SPAN = 2048
_UNSERIALISABLE = "[not serialisable]"


@dataclass(frozen=True)
class SpecSlice:
    text: str  # what goes into the prompt's contract section (<= budget_chars)
    not_in_contract: list[str]  # "METHOD /path" of requested endpoints the document does not declare
    dropped: list[str]  # what budget pressure removed, for logs
    # "METHOD /requested" -> "METHOD /declared template" for every endpoint the document declares.
    operations: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Content cache


class _Unparsed:
    pass


_UNPARSED = _Unparsed()


class _CacheEntry:
    __slots__ = ("document", "sha256", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha256: str | None = None
        self.document: OpenApiDocument | _Unparsed | None = _UNPARSED


class _ContentCache:
    """A small LRU of texts and what was derived from them (sha256, parsed document).

    Looked up by a cheap fingerprint (length and a hash of a few KB at the start, middle and end),
    confirmed with ``==`` (a memcmp; identity when the caller passes the cached object), so a warm
    lookup never hashes the whole text.
    """

    def __init__(self, max_entries: int, max_chars: int) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: OrderedDict[tuple[int, int], list[_CacheEntry]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    @staticmethod
    def fingerprint(text: str) -> tuple[int, int]:
        size = len(text)
        if size <= 3 * _FINGERPRINT_SPAN:
            return size, hash(text)
        middle = size // 2
        return size, hash(
            (text[:_FINGERPRINT_SPAN], text[middle : middle + _FINGERPRINT_SPAN], text[-_FINGERPRINT_SPAN:])
        )

    def entry(self, text: str) -> _CacheEntry:
        key = self.fingerprint(text)
        with self._lock:
            bucket = self._entries.get(key)
            if bucket is not None:
                for entry in bucket:
                    if entry.text == text:
                        self._entries.move_to_end(key)
                        return entry
            entry = _CacheEntry(text)
            if len(text) > self.max_chars:
                return entry  # too big to keep: derived values live as long as the caller holds it
            self._entries.setdefault(key, []).append(entry)
            self._entries.move_to_end(key)
            self._chars += len(text)
            self._evict()
            return entry

    def _evict(self) -> None:
        count = sum(len(bucket) for bucket in self._entries.values())
        while self._entries and (count > self.max_entries or self._chars > self.max_chars):
            _, bucket = self._entries.popitem(last=False)
            count -= len(bucket)
            self._chars -= sum(len(entry.text) for entry in bucket)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


_cache = _ContentCache(CACHE_MAX_ENTRIES, CACHE_MAX_CHARS)


def clear_cache() -> None:
    """Forget every cached text and document (tests and benchmarks measure cold runs with it)."""
    _cache.clear()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep the cyclic collector out of bulk allocation over a big parsed document.

    Parsing and indexing allocate hundreds of thousands of containers; each allocation burst
    makes the collector traverse the whole (acyclic) document again: 4× the time of building a
    100,000-path index. Re-enabled on exit only if it was enabled on entry.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def content_sha256(text: str) -> tuple[str, str]:
    """Hex sha256 of ``text`` (UTF-8, lone surrogates kept) memoised with the parsed document, and
    the cached copy of the text.

    Hand the returned copy to :func:`parse_document`: being the cached object itself, it is found
    by identity instead of a memcmp (23 MB for a 5.7 MB text that holds a single emoji).
    """
    entry = _cache.entry(text)
    if entry.sha256 is None:
        entry.sha256 = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return entry.sha256, entry.text


def parse_document(text: str) -> OpenApiDocument | None:
    """The OpenAPI 3.x / Swagger 2.0 document in ``text``, or None when it is not one (cached)."""
    if not isinstance(text, str) or len(text) > MAX_DOCUMENT_CHARS:
        return None
    entry = _cache.entry(text)
    document = entry.document
    if isinstance(document, _Unparsed):
        with _gc_paused():
            document = _parse(text)
        entry.document = document
    return document


# --------------------------------------------------------------------------------------------
# Parsing


class _Refused(Exception):
    """The text is YAML we will not build (too deep, alias bomb, recursive)."""


def _parse(text: str) -> OpenApiDocument | None:
    # Cheap refusal for texts that cannot be a document (an excerpt in prose, a bare schema).
    if "paths" not in text or ("openapi" not in text and "swagger" not in text):
        return None
    try:
        root = json.loads(text) if text.lstrip()[:1] == "{" else _load_yaml(text)
    except _Refused as refusal:
        logger.warning("spec document refused", extra={"reason": str(refusal), "chars": len(text)})
        return None
    except (ValueError, RecursionError, MemoryError, TypeError):
        return None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError and anything libyaml raises: not a document
        logger.info("spec text is not a document", extra={"error": type(exc).__name__})
        return None
    return OpenApiDocument.from_root(root)


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


# --------------------------------------------------------------------------------------------
# Path matching (DESIGN §7.1 ranks, on the document's templates)


class _TrieNode:
    """A node of the declared templates' segment trie, expanded on first visit: a 100,000-path
    document only splits the segments the requested paths lead to."""

    __slots__ = ("end", "literal", "literal_pending", "pending", "templated")

    def __init__(self) -> None:
        self.pending: list[tuple[int, str, list[str], int]] | None = []  # (order, template, segments, index)
        self.literal: dict[str, _TrieNode] = {}
        # Literal children not visited yet: their entries only (no node until a path leads there).
        self.literal_pending: dict[str, list[tuple[int, str, list[str], int]]] = {}
        self.templated: list[tuple[tuple[int, int], Segment, _TrieNode]] = []
        self.end: tuple[int, str] | None = None  # (document order, template)

    def expand(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        templated: dict[Segment, _TrieNode] = {}
        for order, template, segments, index in pending:
            if index == len(segments):
                if self.end is None or order < self.end[0]:
                    self.end = (order, template)
                continue
            text = segments[index]
            entry = (order, template, segments, index + 1)
            if is_literal_path(text):
                waiting = self.literal_pending.get(text)
                if waiting is None:
                    self.literal_pending[text] = [entry]
                else:
                    waiting.append(entry)
                continue
            segment = split_segment(text)
            child = templated.get(segment)
            if child is None:
                child = templated[segment] = _TrieNode()
            assert child.pending is not None
            child.pending.append(entry)
        # Most specific first (DESIGN §7.1); ties keep document order (sorted is stable).
        self.templated = sorted(
            ((segment_rank(segment), segment, child) for segment, child in templated.items()),
            key=lambda item: item[0],
        )

    def literal_child(self, text: str) -> _TrieNode | None:
        child = self.literal.get(text)
        if child is None:
            waiting = self.literal_pending.pop(text, None)
            if waiting is None:
                return None
            child = self.literal[text] = _TrieNode()
            child.pending = waiting
        return child


def _build_trie(templates: Sequence[str]) -> _TrieNode:
    root = _TrieNode()
    root.pending = [(order, path, path.split("/"), 0) for order, path in enumerate(templates)]
    return root


def _most_specific(root: _TrieNode, path: str) -> str | None:
    """The declared template owning concrete ``path``: most specific, then first in the document."""
    concrete = path.split("/")
    best: tuple[tuple[tuple[int, int], ...], int, str] | None = None
    stack: list[tuple[_TrieNode, int, tuple[tuple[int, int], ...]]] = [(root, 0, ())]
    while stack:
        node, index, ranks = stack.pop()
        if best is not None and ranks > best[0][: len(ranks)]:
            continue  # this branch is already less specific than a match found
        node.expand()
        if index == len(concrete):
            if node.end is not None:
                candidate = (ranks, node.end[0], node.end[1])
                if best is None or candidate[:2] < best[:2]:
                    best = candidate
            continue
        text = concrete[index]
        for rank, segment, child in reversed(node.templated):
            if text and segment_matches(segment, text):
                stack.append((child, index + 1, (*ranks, rank)))
        literal = node.literal_child(text)
        if literal is not None:
            stack.append((literal, index + 1, (*ranks, (0, 0))))
    return None if best is None else best[2]


# --------------------------------------------------------------------------------------------
# JSON pointers and walks


def _pointer_tokens(ref: str) -> tuple[str, ...] | None:
    """Tokens of a local ``$ref`` in URI-fragment form (``#/a~1b/%7Bx%7D/0``), or None."""
    if not ref.startswith("#"):
        return None
    fragment = unquote(ref[1:])
    if not fragment.startswith("/"):
        return None
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in fragment[1:].split("/"))


def _follow(root: Any, tokens: Sequence[str]) -> Any:
    node = root
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return _MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node) or (len(token) > 1 and token[0] == "0"):
                return _MISSING
            node = node[int(token)]
        else:
            return _MISSING
    return node


_MISSING = object()


def _local_refs(node: Any) -> list[str]:
    """Every local ``$ref`` string in ``node``, in document order, each once."""
    seen: dict[str, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            ref = current.get("$ref")
            if isinstance(ref, str) and ref.startswith("#"):
                seen.setdefault(ref, None)
            stack.extend(value for value in reversed(current.values()) if isinstance(value, dict | list))
        elif isinstance(current, list):
            stack.extend(value for value in reversed(current) if isinstance(value, dict | list))
    return list(seen)


def _is_prose(key: Any) -> bool:
    return key in PROSE_KEYS or (isinstance(key, str) and key.startswith("x-"))


def _without_prose(node: Any, name_map: bool = False) -> Any:
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


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (RecursionError, ValueError, TypeError):
        return json.dumps(_UNSERIALISABLE)


# --------------------------------------------------------------------------------------------
# The document


class _Part:
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
            self._full = _dumps(self.node)
        return self._full

    def refs(self, lean: bool) -> list[str]:
        if lean:
            self._make_lean()
            assert self._refs_lean is not None
            return self._refs_lean
        if self._refs_full is None:
            self._refs_full = _local_refs(self.node)
        return self._refs_full

    def _make_lean(self) -> None:
        if self._lean is None:
            lean = _without_prose(self.node, self.name_map)
            self._lean, self._refs_lean = _dumps(lean), _local_refs(lean)


class OpenApiDocument:
    """A parsed document and what was derived from it (memoised: the document is cached warm)."""

    def __init__(self, root: dict[str, Any], version_key: str, version: str, title: str | None) -> None:
        self.root = root
        self.version_key = version_key
        self.version = version
        self.title = title
        self._paths: dict[str, Any] = root["paths"]
        self._declared: dict[str, list[str]] | None = None
        self._by_shape: dict[tuple[str, str], str] | None = None
        self._tries: dict[str, _TrieNode] = {}
        self._targets: dict[str, tuple[tuple[str, ...], Any] | None] = {}
        self._parts: dict[tuple[str, ...], _Part] = {}
        self._slices: OrderedDict[tuple[tuple[tuple[str, str], ...], int], SpecSlice] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_root(cls, root: Any) -> OpenApiDocument | None:
        if not isinstance(root, dict) or not isinstance(root.get("paths"), dict):
            return None
        openapi, swagger = root.get("openapi"), root.get("swagger")
        if openapi is not None and str(openapi).startswith("3."):
            key, version = "openapi", str(openapi)
        elif swagger is not None and str(swagger) == "2.0":
            key, version = "swagger", "2.0"
        else:
            return None
        info = root.get("info")
        title = info.get("title") if isinstance(info, dict) else None
        title = str(title)[:TITLE_MAX_CHARS] if title is not None else None
        return cls(root, key, version[:VERSION_MAX_CHARS], title)

    # -- declared paths ------------------------------------------------------------------

    def _path_item(self, template: str) -> dict[str, Any] | None:
        item = self._paths.get(template)
        if type(item) is dict and "$ref" not in item:
            return item
        if isinstance(item, dict) and isinstance(item.get("$ref"), str) and not any(m in item for m in HTTP_METHODS):
            target = self._target(item["$ref"], allow_paths=True)
            if target is not None and isinstance(target[1], dict):
                return target[1]
        return item if isinstance(item, dict) else None

    def declared_paths(self) -> dict[str, list[str]]:
        """Upper-case method -> the declared path templates with that operation, in document order.

        A path no request or capture could hold (NUL, a lone surrogate) is left out: these are the
        sampler's candidates and become SQL parameters. Computed once per cached document.
        """
        if self._declared is None:
            declared: dict[str, list[str]] = {}
            for template in self._paths:
                if not isinstance(template, str) or template.startswith("x-") or not is_storable(template):
                    continue
                item = self._path_item(template)
                if item is None:
                    continue
                for method in item:
                    if isinstance(method, str) and method.lower() in HTTP_METHODS and isinstance(item[method], dict):
                        declared.setdefault(method.upper(), []).append(template)
            self._declared = declared
        return self._declared

    def _declared_template(self, method: str, path: str) -> str | None:
        """The declared template of ``METHOD path`` (DESIGN §7.1), or None."""
        if self._by_shape is None:
            by_shape: dict[tuple[str, str], str] = {}
            for declared_method, templates in self.declared_paths().items():
                for template in templates:
                    by_shape.setdefault((declared_method, shape_key(template)), template)
            self._by_shape = by_shape
        exact = self._by_shape.get((method, shape_key(path)))
        if exact is not None or not is_literal_path(path):
            return exact
        trie = self._tries.get(method)
        if trie is None:
            trie = self._tries[method] = _build_trie(self.declared_paths().get(method, []))
        return _most_specific(trie, path)

    def _operation(self, method: str, template: str) -> tuple[Any, Any]:
        item = self._path_item(template) or {}
        operation: Any = next(
            (value for key, value in item.items() if isinstance(key, str) and key.upper() == method), {}
        )
        return operation, item.get("parameters")

    # -- references ----------------------------------------------------------------------

    def _target(self, ref: str, allow_paths: bool = False) -> tuple[tuple[str, ...], Any] | None:
        """What a local ``$ref`` points at, or None (not local, dangling, or pulling in paths)."""
        if not allow_paths and ref in self._targets:
            return self._targets[ref]
        tokens = _pointer_tokens(ref)
        result: tuple[tuple[str, ...], Any] | None = None
        # The root, all paths, a path item or a whole operation would bring in other paths.
        refused = (
            tokens is None
            or len(tokens) < 2
            or (tokens[0] == "paths" and len(tokens) < 4 and not allow_paths)
            or (tokens[0] == "components" and len(tokens) < 3)
        )
        if tokens is not None and not refused:
            node = _follow(self.root, tokens)
            if node is not _MISSING:
                result = (tokens, node)
        if not allow_paths:
            self._targets[ref] = result
        return result

    def _part(self, key: tuple[str, ...], build: Any) -> _Part:
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _Part(*build())
        return part

    def _ref_part(self, ref: str) -> _Part | None:
        target = self._target(ref)
        if target is None:
            return None
        tokens, node = target
        return self._part(("ref", ref), lambda: (node, tokens[-1] in NAME_MAPS and isinstance(node, dict)))

    def _operation_part(self, method: str, template: str) -> _Part:
        return self._part(("op", method, template), lambda: (self._operation(method, template)[0], False))

    def _path_parameters_part(self, template: str) -> _Part | None:
        parameters = self._operation("GET", template)[1]
        if not isinstance(parameters, list) or not parameters:
            return None
        return self._part(("params", template), lambda: (parameters, False))

    def _skeleton(self, method: str, template: str) -> str:
        operation, path_parameters = self._operation(method, template)
        names: list[str] = []
        for parameter in [*(path_parameters or []), *(operation.get("parameters") or [])]:
            for _ in range(8):  # a chain of parameter refs, not a cycle
                if isinstance(parameter, dict) and isinstance(parameter.get("$ref"), str):
                    target = self._target(parameter["$ref"])
                    parameter = target[1] if target else None
            if isinstance(parameter, dict) and parameter.get("name") is not None:
                name = str(parameter["name"])[:200]
                if name not in names:
                    names.append(name)
        skeleton: dict[str, Any] = {}
        if isinstance(operation, dict) and operation.get("operationId") is not None:
            skeleton["operationId"] = str(operation["operationId"])[:200]
        skeleton["parameters"] = names
        return _dumps(skeleton)

    def _closure(self, starts: list[str], lean: bool, limit: int) -> tuple[list[tuple[str, int, str]], bool]:
        """(ref, depth, serialised target) for the refs reachable from ``starts``, breadth first, and
        whether that is all of them.

        Stops after the first level at which the targets together exceed ``limit``: budget pressure
        keeps whole levels from the top, so nothing deeper could be kept (a document whose every
        schema is reachable costs what the budget needs, not what the document holds).
        """
        out: list[tuple[str, int, str]] = []
        seen: set[str] = set()
        frontier = list(dict.fromkeys(starts))
        depth, total = 1, 0
        while frontier:
            if total > limit:
                return out, False
            following: list[str] = []
            for ref in frontier:
                if ref in seen:
                    continue
                seen.add(ref)
                part = self._ref_part(ref)
                if part is None:
                    continue  # not local, dangling or refused: the $ref stays as it is
                body = part.text(lean)
                total += len(ref) + len(body) + 4
                out.append((ref, depth, body))
                following.extend(r for r in part.refs(lean) if r not in seen)
            frontier, depth = following, depth + 1
        return out, True

    # -- the slice -----------------------------------------------------------------------

    def slice(self, endpoints: Sequence[Endpoint], budget_chars: int) -> SpecSlice:
        """The contract section for ``endpoints``, at most ``budget_chars`` long (module docstring)."""
        key = (tuple((e.method.upper(), e.path) for e in endpoints), budget_chars)
        cached = self._slices.get(key)
        if cached is not None:
            return cached
        with _gc_paused():
            result = self._slice(endpoints, budget_chars)
        with self._lock:
            self._slices[key] = result
            while len(self._slices) > SLICES_PER_DOCUMENT:
                self._slices.popitem(last=False)
        return result

    def _slice(self, endpoints: Sequence[Endpoint], budget: int) -> SpecSlice:
        not_in_contract: list[str] = []
        operations: dict[str, str] = {}
        considered: list[tuple[str, str]] = []  # (METHOD, template), each once
        for endpoint in endpoints:
            method = endpoint.method.upper()
            template = self._declared_template(method, endpoint.path)
            if template is None:
                if endpoint.label not in not_in_contract:
                    not_in_contract.append(endpoint.label)
                continue
            operations[endpoint.label] = f"{method} {template}"
            if (method, template) not in considered:
                considered.append((method, template))
        requested = {label: op for label, op in operations.items() if label != op}

        head = "{" + _dumps(self.version_key) + ":" + _dumps(self.version)
        if self.title is not None:
            head += ',"info":{"title":' + _dumps(self.title) + "}"
        tail = (',"requested":' + _dumps(requested) if requested else "") + "}"
        op_parts = {op: self._operation_part(*op) for op in considered}
        param_parts = {template: self._path_parameters_part(template) for _, template in considered}

        def assemble(lean: bool, refs: list[tuple[str, int, str]], skeletons: set[tuple[str, str]]) -> str:
            by_path: dict[str, list[str]] = {}
            for method, template in considered:
                pieces = by_path.get(template)
                if pieces is None:
                    pieces = by_path[template] = []
                    params = param_parts[template]
                    # A skeleton names its path-level parameters itself.
                    if params is not None and not all((m, t) in skeletons for m, t in considered if t == template):
                        pieces.append('"parameters":' + params.text(lean))
                if (method, template) in skeletons:
                    body = self._skeleton(method, template)
                else:
                    part = op_parts[(method, template)]
                    body = part.text(lean)
                pieces.append(_dumps(method.lower()) + ":" + body)
            paths = ",".join(_dumps(template) + ":{" + ",".join(pieces) + "}" for template, pieces in by_path.items())
            text = head + ',"paths":{' + paths + "}"
            if refs:
                text += ',"referenced":{' + ",".join(_dumps(ref) + ":" + body for ref, _, body in refs) + "}"
            return text + tail

        def starts(lean: bool) -> list[str]:
            refs: list[str] = []
            for method, template in considered:
                params = param_parts[template]
                if params is not None:
                    refs += params.refs(lean)
                part = op_parts[(method, template)]
                refs += part.refs(lean)
            return refs

        dropped: list[str] = []
        refs, complete = self._closure(starts(False), lean=False, limit=budget)
        text = assemble(False, refs, set()) if complete else ""
        if not complete or len(text) > budget:
            dropped.append("prose")
            refs, complete = self._closure(starts(True), lean=True, limit=budget)
            text = assemble(True, refs, set())
        if len(text) > budget and refs:
            text, kept = self._drop_deepest(assemble, refs, budget)
            dropped.append(_refs_label(refs, kept, complete))
            refs = kept
        if len(text) > budget:
            text, count = self._skeletonise(assemble, considered, op_parts, budget)
            dropped.append(f"operation bodies ({count} of {len(considered)} operations reduced to skeletons)")
        if len(text) > budget:
            keep = max(0, budget - len(CUT_MARKER))
            text = (text[:keep] + CUT_MARKER)[:budget]
            dropped.append("text cut")
        text = _encodable(text)
        if dropped:
            logger.info(
                "spec slice under budget pressure",
                extra={"dropped": dropped, "budget_chars": budget, "operations": len(considered)},
            )
        return SpecSlice(text=text, not_in_contract=not_in_contract, dropped=dropped, operations=operations)

    @staticmethod
    def _drop_deepest(
        assemble: Any, refs: list[tuple[str, int, str]], budget: int
    ) -> tuple[str, list[tuple[str, int, str]]]:
        """Keep whole levels of ``refs`` (breadth-first order) while they fit; in the first level that
        does not fit whole, keep those of its definitions that still fit, and nothing deeper."""
        total = len(assemble(True, [], set())) + len(',"referenced":{}')
        kept: list[tuple[str, int, str]] = []
        cut_depth: int | None = None
        for entry in refs:
            ref, depth, body = entry
            if cut_depth is not None and depth > cut_depth:
                break
            extra = len(_dumps(ref)) + 1 + len(body) + (1 if kept else 0)
            if total + extra > budget:
                cut_depth = depth
                continue
            total += extra
            kept.append(entry)
        return assemble(True, kept, set()), kept

    def _skeletonise(
        self, assemble: Any, considered: list[tuple[str, str]], op_parts: dict[tuple[str, str], _Part], budget: int
    ) -> tuple[str, int]:
        """Reduce operations to skeletons, the largest first, until the text fits."""
        order = sorted(considered, key=lambda op: len(op_parts[op].text(True)), reverse=True)
        skeletons: set[tuple[str, str]] = set()
        text = assemble(True, [], skeletons)
        saving = {op: len(op_parts[op].text(True)) - len(self._skeleton(*op)) for op in considered}
        size = len(text)
        for op in order:
            if size <= budget:
                break
            skeletons.add(op)
            size -= saving[op]
        text = assemble(True, [], skeletons)
        if len(text) > budget and len(skeletons) < len(considered):
            skeletons = set(considered)
            text = assemble(True, [], skeletons)
        return text, len(skeletons)


def _refs_label(refs: list[tuple[str, int, str]], kept: list[tuple[str, int, str]], complete: bool) -> str:
    """E.g. ``refs>depth 2 (16 of 73 referenced definitions)``, or with ``and 3 of 9 at depth 2``
    when only part of the last level kept fitted."""
    kept_refs = {ref for ref, _, _ in kept}
    dropped = [(ref, depth) for ref, depth, _ in refs if ref not in kept_refs]
    shallowest = min(depth for _, depth in dropped)
    at_level = [ref for ref, depth, _ in refs if depth == shallowest]
    dropped_at_level = [ref for ref, depth in dropped if depth == shallowest]
    whole = len(dropped_at_level) == len(at_level)
    label = f"refs>depth {shallowest - 1}" if whole else f"refs>depth {shallowest}"
    if not whole:
        label += f" and {len(dropped_at_level)} of {len(at_level)} at depth {shallowest}"
    if not complete:
        return (
            f"{label} (of the first {len(refs)} referenced definitions, {len(dropped)} dropped; deeper ones not read)"
        )
    return f"{label} ({len(dropped)} of {len(refs)} referenced definitions)"


def _encodable(text: str) -> str:
    """Lone surrogates (legal in JSON escapes, not in UTF-8) would break the HTTP call later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text
