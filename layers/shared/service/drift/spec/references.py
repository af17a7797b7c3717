"""Local ``$ref`` s: JSON-pointer resolution, which targets are followed, and their closure.

A reference is local when it is a URI fragment (``#/components/schemas/User``,
``#/a~1b/%7Bx%7D/0``); others stay in the slice as they are. A target that would bring in other
paths (the root, all paths, a path item, a whole operation) is not followed, except to resolve a
path item that is itself a ``$ref``. The closure of a slice's references is walked breadth first,
so budget pressure can keep whole levels from the top.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

MISSING = object()
# (ref, depth, serialised target): depth 1 for what an operation uses directly.
Reached = tuple[str, int, str]


def pointer_tokens(ref: str) -> tuple[str, ...] | None:
    """Tokens of a local ``$ref`` in URI-fragment form (``#/a~1b/%7Bx%7D/0``), or None."""
    if not ref.startswith("#"):
        return None
    fragment = unquote(ref[1:])
    if not fragment.startswith("/"):
        return None
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in fragment[1:].split("/"))


def follow(root: Any, tokens: Sequence[str]) -> Any:
    """The node at ``tokens`` under ``root``, or :data:`MISSING`."""
    node = root
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node) or (len(token) > 1 and token[0] == "0"):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node


def local_refs(node: Any) -> list[str]:
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


class References:
    """The targets of one document's local refs (memoised: the document is cached warm)."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self._targets: dict[str, tuple[tuple[str, ...], Any] | None] = {}

    def target(self, ref: str, allow_paths: bool = False) -> tuple[tuple[str, ...], Any] | None:
        """What a local ``$ref`` points at, or None (not local, dangling, or pulling in paths)."""
        if not allow_paths and ref in self._targets:
            return self._targets[ref]
        tokens = pointer_tokens(ref)
        result: tuple[tuple[str, ...], Any] | None = None
        # The root, all paths, a path item or a whole operation would bring in other paths.
        refused = (
            tokens is None
            or len(tokens) < 2
            or (tokens[0] == "paths" and len(tokens) < 4 and not allow_paths)
            or (tokens[0] == "components" and len(tokens) < 3)
        )
        if tokens is not None and not refused:
            node = follow(self.root, tokens)
            if node is not MISSING:
                result = (tokens, node)
        if not allow_paths:
            self._targets[ref] = result
        return result


def closure(
    starts: list[str], read: Callable[[str], tuple[str, list[str]] | None], limit: int
) -> tuple[list[Reached], bool]:
    """The refs reachable from ``starts``, breadth first, and whether that is all of them.

    ``read`` gives a ref's serialised target and the refs in it, or None when it is not followed
    (the ``$ref`` then stays as it is). Stops after the first level at which the targets together
    exceed ``limit``: budget pressure keeps whole levels from the top, so nothing deeper could be
    kept (a document whose every schema is reachable costs what the budget needs, not what the
    document holds).
    """
    out: list[Reached] = []
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
            target = read(ref)
            if target is None:
                continue  # not local, dangling or refused: the $ref stays as it is
            body, refs = target
            total += len(ref) + len(body) + 4
            out.append((ref, depth, body))
            following.extend(r for r in refs if r not in seen)
        frontier, depth = following, depth + 1
    return out, True
