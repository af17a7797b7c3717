"""A parsed OpenAPI 3.x or Swagger 2.0 document: its version, title, declared operations (DESIGN §7.2).

A caller may send a whole document (JSON or YAML, up to 6,000,000 characters). Parsed once per
warm process (:func:`service.drift.spec.cache.parse_document`), it answers which paths it
declares for each method (the sampler's candidates, DESIGN §7.1), which declared operation a
requested endpoint is, and cuts the prompt's slice (:mod:`service.drift.spec.slicing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.drift.models import Endpoint
from service.drift.spec.paths import TrieNode, build_trie, is_literal_path, most_specific, shape_key
from service.drift.spec.references import References
from service.drift.spec.slicing import Slicer, SpecSlice
from service.storable import is_storable

TITLE_MAX_CHARS = 300
VERSION_MAX_CHARS = 32
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class OpenApiDocument:
    """A parsed document and what was derived from it (memoised: the document is cached warm)."""

    def __init__(self, root: dict[str, Any], version_key: str, version: str, title: str | None) -> None:
        self.root = root
        self.version_key = version_key
        self.version = version
        self.title = title
        self.references = References(root)
        self._paths: dict[str, Any] = root["paths"]
        self._declared: dict[str, list[str]] | None = None
        self._by_shape: dict[tuple[str, str], str] | None = None
        self._tries: dict[str, TrieNode] = {}
        self._slicer = Slicer(self)

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

    def slice(self, endpoints: Sequence[Endpoint], budget_chars: int) -> SpecSlice:
        """The contract section for ``endpoints``, at most ``budget_chars`` long (:mod:`.slicing`)."""
        return self._slicer.slice(endpoints, budget_chars)

    # -- declared paths ------------------------------------------------------------------

    def _path_item(self, template: str) -> dict[str, Any] | None:
        item = self._paths.get(template)
        if type(item) is dict and "$ref" not in item:
            return item
        if isinstance(item, dict) and isinstance(item.get("$ref"), str) and not any(m in item for m in HTTP_METHODS):
            target = self.references.target(item["$ref"], allow_paths=True)
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

    def declared_template(self, method: str, path: str) -> str | None:
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
            trie = self._tries[method] = build_trie(self.declared_paths().get(method, []))
        return most_specific(trie, path)

    def operation(self, method: str, template: str) -> tuple[Any, Any]:
        """The operation of ``METHOD template`` (``{}`` when absent) and its path's parameters."""
        item = self._path_item(template) or {}
        operation: Any = next(
            (value for key, value in item.items() if isinstance(key, str) and key.upper() == method), {}
        )
        return operation, item.get("parameters")
