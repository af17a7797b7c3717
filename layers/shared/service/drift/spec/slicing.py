"""Budgeted slicing: a document cut down to what the prompt needs (DESIGN §7.2).

The prompt gets a *slice*: the version, ``info.title``, the operations of the considered
endpoints (with their path-level parameters) and the transitive closure of the local ``$ref``
targets they use, serialised as compact JSON::

    {"openapi": "3.0.3", "info": {"title": "..."},
     "paths": {"/users/{id}": {"parameters": [...], "get": {...}}},
     "requested": {"GET /users/42": "GET /users/{id}"},          # only when they differ
     "referenced": {"#/components/schemas/User": {...}, ...}}    # keys are the $ref strings

When that is over the budget: prose goes first, then the deepest references, then operations are
reduced to skeletons (``operationId`` and parameter names); only then is the text cut.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.drift.models import Endpoint
from service.drift.spec.collector import gc_paused
from service.drift.spec.parts import NAME_MAPS, Part, dumps
from service.drift.spec.references import Reached, References, closure
from service.observability import logger

SLICES_PER_DOCUMENT = 32
CUT_MARKER = "…[slice cut to fit the budget]"


@dataclass(frozen=True)
class SpecSlice:
    text: str  # what goes into the prompt's contract section (<= budget_chars)
    not_in_contract: list[str]  # "METHOD /path" of requested endpoints the document does not declare
    dropped: list[str]  # what budget pressure removed, for logs
    # "METHOD /requested" -> "METHOD /declared template" for every endpoint the document declares.
    operations: dict[str, str] = field(default_factory=dict)


class SliceSource(Protocol):
    """What a slice is cut from: a parsed document (:class:`~service.drift.spec.document.OpenApiDocument`)."""

    @property
    def version_key(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def title(self) -> str | None: ...

    @property
    def references(self) -> References: ...

    def declared_template(self, method: str, path: str) -> str | None: ...

    def operation(self, method: str, template: str) -> tuple[Any, Any]: ...


class Slicer:
    """Cuts the slices of one document, memoising their pieces and the last slices cut."""

    def __init__(self, document: SliceSource) -> None:
        self._document = document
        self._parts: dict[tuple[str, ...], Part] = {}
        self._slices: OrderedDict[tuple[tuple[tuple[str, str], ...], int], SpecSlice] = OrderedDict()
        self._lock = threading.Lock()

    def slice(self, endpoints: Sequence[Endpoint], budget_chars: int) -> SpecSlice:
        """The contract section for ``endpoints``, at most ``budget_chars`` long (module docstring)."""
        key = (tuple((e.method.upper(), e.path) for e in endpoints), budget_chars)
        cached = self._slices.get(key)
        if cached is not None:
            return cached
        with gc_paused():
            result = self._slice(endpoints, budget_chars)
        with self._lock:
            self._slices[key] = result
            while len(self._slices) > SLICES_PER_DOCUMENT:
                self._slices.popitem(last=False)
        return result

    # -- the pieces ----------------------------------------------------------------------

    def _part(self, key: tuple[str, ...], build: Any) -> Part:
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = Part(*build())
        return part

    def _ref_part(self, ref: str) -> Part | None:
        target = self._document.references.target(ref)
        if target is None:
            return None
        tokens, node = target
        return self._part(("ref", ref), lambda: (node, tokens[-1] in NAME_MAPS and isinstance(node, dict)))

    def _operation_part(self, method: str, template: str) -> Part:
        return self._part(("op", method, template), lambda: (self._document.operation(method, template)[0], False))

    def _path_parameters_part(self, template: str) -> Part | None:
        parameters = self._document.operation("GET", template)[1]
        if not isinstance(parameters, list) or not parameters:
            return None
        return self._part(("params", template), lambda: (parameters, False))

    def _skeleton(self, method: str, template: str) -> str:
        operation, path_parameters = self._document.operation(method, template)
        names: list[str] = []
        for parameter in [*(path_parameters or []), *(operation.get("parameters") or [])]:
            for _ in range(8):  # a chain of parameter refs, not a cycle
                if isinstance(parameter, dict) and isinstance(parameter.get("$ref"), str):
                    target = self._document.references.target(parameter["$ref"])
                    parameter = target[1] if target else None
            if isinstance(parameter, dict) and parameter.get("name") is not None:
                name = str(parameter["name"])[:200]
                if name not in names:
                    names.append(name)
        skeleton: dict[str, Any] = {}
        if isinstance(operation, dict) and operation.get("operationId") is not None:
            skeleton["operationId"] = str(operation["operationId"])[:200]
        skeleton["parameters"] = names
        return dumps(skeleton)

    def _closure(self, starts: list[str], lean: bool, limit: int) -> tuple[list[Reached], bool]:
        """The serialised targets reachable from ``starts`` (:func:`~service.drift.spec.references.closure`)."""

        def read(ref: str) -> tuple[str, list[str]] | None:
            part = self._ref_part(ref)
            return None if part is None else (part.text(lean), part.refs(lean))

        return closure(starts, read, limit)

    # -- the slice -----------------------------------------------------------------------

    def _slice(self, endpoints: Sequence[Endpoint], budget: int) -> SpecSlice:
        document = self._document
        not_in_contract: list[str] = []
        operations: dict[str, str] = {}
        considered: list[tuple[str, str]] = []  # (METHOD, template), each once
        for endpoint in endpoints:
            method = endpoint.method.upper()
            template = document.declared_template(method, endpoint.path)
            if template is None:
                if endpoint.label not in not_in_contract:
                    not_in_contract.append(endpoint.label)
                continue
            operations[endpoint.label] = f"{method} {template}"
            if (method, template) not in considered:
                considered.append((method, template))
        requested = {label: op for label, op in operations.items() if label != op}

        head = "{" + dumps(document.version_key) + ":" + dumps(document.version)
        if document.title is not None:
            head += ',"info":{"title":' + dumps(document.title) + "}"
        tail = (',"requested":' + dumps(requested) if requested else "") + "}"
        op_parts = {op: self._operation_part(*op) for op in considered}
        param_parts = {template: self._path_parameters_part(template) for _, template in considered}

        def assemble(lean: bool, refs: list[Reached], skeletons: set[tuple[str, str]]) -> str:
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
                pieces.append(dumps(method.lower()) + ":" + body)
            paths = ",".join(dumps(template) + ":{" + ",".join(pieces) + "}" for template, pieces in by_path.items())
            text = head + ',"paths":{' + paths + "}"
            if refs:
                text += ',"referenced":{' + ",".join(dumps(ref) + ":" + body for ref, _, body in refs) + "}"
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
    def _drop_deepest(assemble: Any, refs: list[Reached], budget: int) -> tuple[str, list[Reached]]:
        """Keep whole levels of ``refs`` (breadth-first order) while they fit; in the first level that
        does not fit whole, keep those of its definitions that still fit, and nothing deeper."""
        total = len(assemble(True, [], set())) + len(',"referenced":{}')
        kept: list[Reached] = []
        cut_depth: int | None = None
        for entry in refs:
            ref, depth, body = entry
            if cut_depth is not None and depth > cut_depth:
                break
            extra = len(dumps(ref)) + 1 + len(body) + (1 if kept else 0)
            if total + extra > budget:
                cut_depth = depth
                continue
            total += extra
            kept.append(entry)
        return assemble(True, kept, set()), kept

    def _skeletonise(
        self, assemble: Any, considered: list[tuple[str, str]], op_parts: dict[tuple[str, str], Part], budget: int
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


def _refs_label(refs: list[Reached], kept: list[Reached], complete: bool) -> str:
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
