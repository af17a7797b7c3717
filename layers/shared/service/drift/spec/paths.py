"""Path templates of the contract-drift sampler (DESIGN §7.1), compiled for one SQL statement.

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

Each templated endpoint compiles to a PostgreSQL ARE pattern, anchored, whose negative lookahead
names the templated rivals that outrank it (candidates that may match a path it matches); plus
its literal prefix and an upper bound for an index range (``~>=~``/``~<~``, which a
``text_pattern_ops`` index serves). Literal candidates are not in the pattern: a lookahead of a
few hundred literal alternatives costs Postgres ~180 us per row against ~5 us without, so they go
to the statement as one set of ``(METHOD, path)`` pairs every template skips (a hashed lookup).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

# One segment is a tuple of parts: a str is literal text, PARAM one parameter.
PARAM = None
Part = str | None
Segment = tuple[Part, ...]

_PARAM_RE = re.compile(r"\{[^{}/]+\}")
_PG_SPECIALS = frozenset("\\^$.|?*+()[]{}")
_PG_PARAM = "[^/]+"
_SHAPE_PARAM = "{\x00}"
# The rivals' share of one pattern. Postgres refuses patterns whose automaton grows past its
# limit ("regular expression is too complex": ~300,000 characters of alternation here), and
# compiling costs ~40 ms per 10,000 characters, so above this the rivals are coarsened (see
# :func:`_exclusion`): an endpoint may then lose samples to its rivals, never gain foreign ones.
MAX_EXCLUSION_CHARS = 20_000
_MAX_CODE_POINT = 0x10FFFF


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


def prefix_upper_bound(prefix: str) -> str | None:
    """Smallest string above every string starting with ``prefix`` in byte (code point) order.

    None when there is none (empty prefix, or only U+10FFFF): the caller must not use a range.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # not encodable in UTF-8: the next valid one
            code = 0xE000
        if code <= _MAX_CODE_POINT:
            return "".join(chars) + chr(code)
    return None


@dataclass(frozen=True)
class EndpointPlan:
    """How one endpoint is sampled: ``kind`` is ``literal`` (exact path), ``template`` (index range
    on ``lower``..``upper`` filtered by ``pattern``, or a newest-first walk when hot) or ``walk``
    (no usable prefix: always the newest-first walk)."""

    kind: str
    pattern: str | None
    lower: str | None
    upper: str | None
    rivals: int = 0
    coarsened: bool = False


def _compatible(a: Template, b: Template) -> bool:
    """Whether two same-length templates may match a common path (over-approximation is fine)."""
    for seg_a, seg_b in zip(a.segments, b.segments, strict=True):
        lit_a, lit_b = PARAM not in seg_a, PARAM not in seg_b
        if lit_a and lit_b:
            if seg_a != seg_b:
                return False
            continue
        if lit_a or lit_b:
            literal, templated = (seg_a, seg_b) if lit_a else (seg_b, seg_a)
            if not Template("", (templated,)).matches("".join(p for p in literal if p is not PARAM)):
                return False
            continue
        head_a, head_b = _head(seg_a), _head(seg_b)
        tail_a, tail_b = _tail(seg_a), _tail(seg_b)
        if not (head_a.startswith(head_b) or head_b.startswith(head_a)):
            return False
        if not (tail_a.endswith(tail_b) or tail_b.endswith(tail_a)):
            return False
    return True


def _head(segment: Segment) -> str:
    return segment[0] if segment and segment[0] is not PARAM else ""


def _tail(segment: Segment) -> str:
    return segment[-1] if segment and segment[-1] is not PARAM else ""


def _exclusion(rivals: list[Template]) -> tuple[str, bool]:
    """The lookahead alternation of ``rivals``; coarsened under :data:`MAX_EXCLUSION_CHARS`.

    Coarsening keeps each rival's first ``k`` atoms followed by ``.*`` (a superset of what the rival
    matches), with the largest ``k`` that fits: exclusion only grows.
    """
    exact = sorted({rival.pg_body for rival in rivals})
    text = "|".join(exact)
    if len(text) <= MAX_EXCLUSION_CHARS:
        return text, False
    low, high = 0, max(len(rival.atoms) for rival in rivals)
    best = ".*"
    while low <= high:
        k = (low + high) // 2
        cut = "|".join(sorted({"".join(rival.atoms[:k]) + ".*" for rival in rivals}))
        if len(cut) <= MAX_EXCLUSION_CHARS:
            best, low = cut, k + 1
        else:
            high = k - 1
    return best, True


class CandidateSet:
    """The candidates of one method: requested templates first, then the document's paths."""

    def __init__(self, requested: Iterable[Template], declared: Iterable[str]) -> None:
        self.ordered: list[Template] = []
        seen: set[tuple[Segment, ...]] = set()
        for template in requested:
            self._add(template, seen)
        for path in declared:
            if isinstance(path, str):
                self._add(_parse_cached(path), seen)
        # Literal paths by segment count, sorted (code point order, as prefix_upper_bound): the ones
        # under an endpoint's literal prefix are a bisected slice, not a scan of the document.
        self.literals: dict[int, list[str]] = {}
        self.templated: dict[int, list[tuple[int, Template]]] = {}
        for order, template in enumerate(self.ordered):
            length = len(template.segments)
            if template.is_literal:
                self.literals.setdefault(length, []).append(template.path)
            else:
                self.templated.setdefault(length, []).append((order, template))
        for paths in self.literals.values():
            paths.sort()

    def _add(self, template: Template, seen: set[tuple[Segment, ...]]) -> None:
        if template.shape not in seen:
            seen.add(template.shape)
            self.ordered.append(template)

    def literal_rivals(self, endpoint: Template) -> list[str]:
        """Literal candidates ``endpoint`` matches: they own their paths (literal beats template)."""
        paths = self.literals.get(len(endpoint.segments), [])
        upper = prefix_upper_bound(endpoint.prefix)
        start = bisect_left(paths, endpoint.prefix)
        end = bisect_left(paths, upper) if upper is not None else len(paths)
        return [path for path in paths[start:end] if endpoint.matches(path)]

    def templated_rivals(self, endpoint: Template) -> list[Template]:
        """Templated candidates that outrank ``endpoint`` and may match a path it matches."""
        candidates = self.templated.get(len(endpoint.segments), [])
        order = next((o for o, c in candidates if c.shape == endpoint.shape), len(self.ordered))
        own = (endpoint.specificity, order)
        prefix = endpoint.prefix
        return [
            candidate
            for index, candidate in candidates
            if (candidate.specificity, index) < own
            and (candidate.prefix.startswith(prefix) or prefix.startswith(candidate.prefix))
            and _compatible(candidate, endpoint)
        ]


@dataclass(frozen=True)
class SamplingPlan:
    """Plans in request order (None for a repeat of an earlier endpoint), and the ``(METHOD, path)``
    of every literal candidate some templated endpoint matches: no template samples those paths."""

    endpoints: list[EndpointPlan | None]
    excluded: list[tuple[str, str]]


def plan_endpoints(
    endpoints: Sequence[tuple[str, str]], declared_paths: Mapping[str, Sequence[str]] | None = None
) -> SamplingPlan:
    """Compile the requested ``(method, path)`` pairs against the candidates of their method."""
    declared = {str(method).upper(): paths for method, paths in (declared_paths or {}).items()}
    templates = [Template.parse(path) for _, path in endpoints]
    methods = [method.upper() for method, _ in endpoints]
    candidate_sets: dict[str, CandidateSet] = {}
    seen: set[tuple[str, tuple[Segment, ...]]] = set()
    excluded: dict[tuple[str, str], None] = {}
    plans: list[EndpointPlan | None] = []
    for method, template in zip(methods, templates, strict=True):
        if (method, template.shape) in seen:
            plans.append(None)
            continue
        seen.add((method, template.shape))
        if template.is_literal:
            plans.append(EndpointPlan("literal", None, None, None))
            continue
        if method not in candidate_sets:
            requested = [t for m, t in zip(methods, templates, strict=True) if m == method]
            candidate_sets[method] = CandidateSet(requested, declared.get(method) or ())
        candidates = candidate_sets[method]
        literals = candidates.literal_rivals(template)
        excluded.update(((method, path), None) for path in literals)
        rivals = candidates.templated_rivals(template)
        exclusion, coarsened = _exclusion(rivals) if rivals else ("", False)
        lookahead = f"(?!(?:{exclusion})$)" if exclusion else ""
        pattern = f"^{lookahead}{template.pg_body}$"
        upper = prefix_upper_bound(template.prefix)
        kind = "template" if upper is not None else "walk"
        plans.append(EndpointPlan(kind, pattern, template.prefix, upper, len(literals) + len(rivals), coarsened))
    return SamplingPlan(plans, list(excluded))


@lru_cache(maxsize=4096)
def _parse_cached(path: str) -> Template:
    return Template.parse(path)
