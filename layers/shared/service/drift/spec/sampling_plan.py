"""The sampler's plan (DESIGN §7.1): requested endpoints compiled for one SQL statement.

Each templated endpoint compiles to a PostgreSQL ARE pattern, anchored, whose negative lookahead
names the templated rivals that outrank it (candidates that may match a path it matches, ranked
as :mod:`service.drift.spec.paths` says); plus its literal prefix and an upper bound for an index
range (``~>=~``/``~<~``, which a ``text_pattern_ops`` index serves). Literal candidates are not in
the pattern: a lookahead of a few hundred literal alternatives costs Postgres ~180 us per row
against ~5 us without, so they go to the statement as one set of ``(METHOD, path)`` pairs every
template skips (a hashed lookup).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from service.drift.spec.paths import PARAM, Segment, Template

# The rivals' share of one pattern. Postgres refuses patterns whose automaton grows past its
# limit ("regular expression is too complex": ~300,000 characters of alternation here), and
# compiling costs ~40 ms per 10,000 characters, so above this the rivals are coarsened (see
# :func:`_exclusion`): an endpoint may then lose samples to its rivals, never gain foreign ones.
MAX_EXCLUSION_CHARS = 20_000
_MAX_CODE_POINT = 0x10FFFF


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
