"""Path templates (DESIGN §7.1): their grammar, how they match, and which one owns a path.

A requested path's ``{name}`` part matches one or more characters other than ``/``; every other
character matches itself. A ``{`` that does not open a ``{name}`` (no closing ``}`` before the
next ``/`` or ``{``, or an empty ``{}``) is literal text.

Ownership: a capture belongs to the single most specific candidate that matches it. Candidates
with a different number of segments never match the same path, so specificity compares segment by
segment from the left, each segment ranked

    literal (no parameter)  <  partly templated (``{name}.json``)  <  fully templated (``{id}``)

and, between two partly templated segments, the one with more literal characters first
(``{name}.json`` before ``{name}.{ext}``). Full ties go to the first candidate in request order,
then in document order. A literal candidate therefore always owns its own path.

:func:`owner_of` is that rule in plain Python (the reference the SQL is tested against);
:func:`build_trie` and :func:`most_specific` apply it fast to a document's declared templates.
:mod:`service.drift.spec.sampling_plan` compiles it into the sampler's statement, from the
Postgres ARE atoms each :class:`Template` spells itself as.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

# One segment is a tuple of parts: a str is literal text, PARAM one parameter.
PARAM = None
Part = str | None
Segment = tuple[Part, ...]

_PARAM_RE = re.compile(r"\{[^{}/]+\}")
_PG_SPECIALS = frozenset("\\^$.|?*+()[]{}")
_PG_PARAM = "[^/]+"
_SHAPE_PARAM = "{\x00}"


def split_segment(segment: str) -> Segment:
    """One ``/``-free piece of a path as literal strings and :data:`PARAM` (names erased)."""
    if "{" not in segment:
        return (segment,) if segment else ()
    parts: list[Part] = []
    position = 0
    for match in _PARAM_RE.finditer(segment):
        if match.start() > position:
            parts.append(segment[position : match.start()])
        parts.append(PARAM)
        position = match.end()
    if position < len(segment):
        parts.append(segment[position:])
    return tuple(parts)


def is_literal_path(path: str) -> bool:
    """No parameter in ``path`` (braces that do not form one are literal text)."""
    return "{" not in path or _PARAM_RE.search(path) is None


def shape_key(path: str) -> str:
    """:func:`shape_of` as a string, without splitting: cheap over a 100,000-path document.

    Every parameter becomes ``{NUL}``, itself a parameter, so no literal text can be taken for it.
    """
    return _PARAM_RE.sub(_SHAPE_PARAM, path) if "{" in path else path


def segment_matches(segment: Segment, text: str) -> bool:
    """Whether one concrete segment matches a (maybe templated) one, in linear time.

    Parameters match one or more characters (the segment holds no ``/``); literal parts are
    placed leftmost-first, which is optimal for such wildcards. No regex: a hostile template
    such as ``{a}{b}{c}{d}{e}!`` must not backtrack (a Python regex took 75 s on one path).
    """
    if len(segment) <= 1 and PARAM not in segment:  # literal (or empty): the common case
        return segment == ((text,) if text else ())
    parts = list(segment)
    prefix = (parts.pop(0) if parts and parts[0] is not PARAM else None) or ""
    suffix = (parts.pop() if parts and parts[-1] is not PARAM else None) or ""
    if len(text) < len(prefix) + len(suffix) or not text.startswith(prefix) or not text.endswith(suffix):
        return False
    if not parts:  # a literal segment: a parameter is never popped as prefix or suffix
        return text == prefix
    position, end = len(prefix), len(text) - len(suffix)
    gap = 0
    for part in parts:
        if part is PARAM:
            gap += 1
            continue
        found = text.find(part, position + gap, end)
        if found < 0:
            return False
        position, gap = found + len(part), 0
    return end - position >= gap


@dataclass(frozen=True)
class Template:
    """A parsed path: its segments, with parameter names erased."""

    path: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, path: str) -> Template:
        if "{" not in path:
            return cls(path, tuple((s,) if s else () for s in path.split("/")))  # split_segment, faster
        return cls(path, tuple(split_segment(s) for s in path.split("/")))

    @cached_property
    def is_literal(self) -> bool:
        return all(PARAM not in segment for segment in self.segments)

    @cached_property
    def shape(self) -> tuple[Segment, ...]:
        """Equal for two paths that differ only in their parameter names (one endpoint)."""
        return self.segments

    @cached_property
    def specificity(self) -> tuple[tuple[int, int], ...]:
        """Smaller is more specific; compared from the left (module docstring)."""
        return tuple(segment_rank(segment) for segment in self.segments)

    @cached_property
    def prefix(self) -> str:
        """The literal text before the first parameter (the whole path when literal)."""
        out: list[str] = []
        for index, segment in enumerate(self.segments):
            if index:
                out.append("/")
            for part in segment:
                if part is PARAM:
                    return "".join(out)
                out.append(part)
        return "".join(out)

    @cached_property
    def atoms(self) -> tuple[str, ...]:
        """The Postgres ARE pattern, unanchored, one atom per character or parameter."""
        out: list[str] = []
        for index, segment in enumerate(self.segments):
            if index:
                out.append("/")
            for part in segment:
                if part is PARAM:
                    out.append(_PG_PARAM)
                else:
                    out.extend("\\" + c if c in _PG_SPECIALS else c for c in part)
        return tuple(out)

    @cached_property
    def pg_body(self) -> str:
        return "".join(self.atoms)

    def matches(self, path: str) -> bool:
        if self.is_literal:
            return path == self.path
        texts = path.split("/")
        return len(texts) == len(self.segments) and all(
            segment_matches(segment, text) for segment, text in zip(self.segments, texts, strict=True)
        )


def segment_rank(segment: Segment) -> tuple[int, int]:
    """Smaller is more specific: literal, then partly templated (more literal text first), then a
    whole-segment parameter."""
    if PARAM not in segment:
        return (0, 0)
    literal_chars = sum(len(part) for part in segment if part is not PARAM)
    return (1, -literal_chars) if literal_chars else (2, 0)


def shape_of(path: str) -> tuple[Segment, ...]:
    """Key under which two requested paths are the same endpoint (names erased)."""
    return Template.parse(path).shape


def owner_of(path: str, candidates: Sequence[str]) -> int | None:
    """Index in ``candidates`` (priority order: requested, then declared) of the owner of ``path``.

    The reference the SQL is tested against: plain Python, no shortcuts.
    """
    best: tuple[tuple[tuple[int, int], ...], int] | None = None
    for index, candidate in enumerate(candidates):
        template = Template.parse(candidate)
        if template.matches(path):
            key = (template.specificity, index)
            if best is None or key < best:
                best = key
    return None if best is None else best[1]


# --------------------------------------------------------------------------------------------
# The declared template owning a concrete path (a trie over the document's templates)


class TrieNode:
    """A node of the declared templates' segment trie, expanded on first visit: a 100,000-path
    document only splits the segments the requested paths lead to."""

    __slots__ = ("end", "literal", "literal_pending", "pending", "templated")

    def __init__(self) -> None:
        self.pending: list[tuple[int, str, list[str], int]] | None = []  # (order, template, segments, index)
        self.literal: dict[str, TrieNode] = {}
        # Literal children not visited yet: their entries only (no node until a path leads there).
        self.literal_pending: dict[str, list[tuple[int, str, list[str], int]]] = {}
        self.templated: list[tuple[tuple[int, int], Segment, TrieNode]] = []
        self.end: tuple[int, str] | None = None  # (document order, template)

    def expand(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        templated: dict[Segment, TrieNode] = {}
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
                child = templated[segment] = TrieNode()
            assert child.pending is not None
            child.pending.append(entry)
        # Most specific first (DESIGN §7.1); ties keep document order (sorted is stable).
        self.templated = sorted(
            ((segment_rank(segment), segment, child) for segment, child in templated.items()),
            key=lambda item: item[0],
        )

    def literal_child(self, text: str) -> TrieNode | None:
        child = self.literal.get(text)
        if child is None:
            waiting = self.literal_pending.pop(text, None)
            if waiting is None:
                return None
            child = self.literal[text] = TrieNode()
            child.pending = waiting
        return child


def build_trie(templates: Sequence[str]) -> TrieNode:
    """The trie of a method's declared templates, in document order (nodes expand when visited)."""
    root = TrieNode()
    root.pending = [(order, path, path.split("/"), 0) for order, path in enumerate(templates)]
    return root


def most_specific(root: TrieNode, path: str) -> str | None:
    """The declared template owning concrete ``path``: most specific, then first in the document."""
    concrete = path.split("/")
    best: tuple[tuple[tuple[int, int], ...], int, str] | None = None
    stack: list[tuple[TrieNode, int, tuple[tuple[int, int], ...]]] = [(root, 0, ())]
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
