"""DESIGN §7.1 path templates: matching, escaping, specificity, one endpoint per shape."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.drift.models import ScoreRequest
from service.drift.spec.paths import Template, owner_of, shape_of
from service.drift.spec.sampling_plan import MAX_EXCLUSION_CHARS, plan_endpoints, prefix_upper_bound


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/users/{id}", "/users/42", True),
        ("/users/{id}", "/users/{id}", True),
        ("/users/{id}", "/users", False),
        ("/users/{id}", "/users/", False),
        ("/users/{id}", "/users/42/orders", False),
        ("/files/{name}.{ext}", "/files/a.txt", True),
        ("/files/{name}.{ext}", "/files/a.b.c", True),
        ("/files/{name}.{ext}", "/files/.txt", False),
        ("/files/{name}.{ext}", "/files/atxt", False),
        ("/a.b", "/a.b", True),
        ("/a.b", "/aXb", False),
        ("/p/(x)+$[^|?*\\]", "/p/(x)+$[^|?*\\]", True),
        ("/p/(x)+$", "/p/xx", False),
        ("/{a}", "/ü€𝄞", True),
        ("/{a}", "/a\nb", True),
        ("/{a}", "/", False),
        ("/open{brace", "/open{brace", True),
        ("/open{brace", "/openXbrace", False),
        ("/x/{}", "/x/{}", True),
        ("/x/{}", "/x/1", False),
        ("/{a}{b}", "/xy", True),
        ("/{a}{b}", "/x", False),
    ],
)
def test_template_matching(template: str, path: str, expected: bool) -> None:
    assert Template.parse(template).matches(path) is expected


def test_a_path_without_parameters_is_literal() -> None:
    literal = Template.parse("/users/me")
    assert literal.is_literal and literal.prefix == "/users/me"
    assert literal.matches("/users/me") and not literal.matches("/users/mE")


@pytest.mark.parametrize(
    ("candidates", "path", "owner"),
    [
        (["/users/{id}", "/users/me"], "/users/me", 1),
        (["/users/{id}", "/users/me"], "/users/42", 0),
        (["/a/{x}/{y}", "/a/{x}/c"], "/a/1/c", 1),
        (["/{a}/b/c", "/a/{b}/{c}"], "/a/b/c", 1),  # the leftmost difference decides
        (["/files/{name}.{ext}", "/files/{name}.json"], "/files/a.json", 1),
        (["/files/{name}", "/files/{name}.json"], "/files/a.json", 1),
        (["/files/{n}.json", "/files/{x}.json"], "/files/a.json", 0),  # full tie: first
        (["/users/{id}"], "/users/42/orders", None),
    ],
)
def test_owner_is_the_most_specific_candidate(candidates: list[str], path: str, owner: int | None) -> None:
    assert owner_of(path, candidates) == owner


def test_names_do_not_matter_for_identity() -> None:
    assert shape_of("/users/{id}") == shape_of("/users/{user_id}")
    assert shape_of("/users/{id}") != shape_of("/users/{id}/x")
    assert shape_of("/x/{}") != shape_of("/x/{a}")  # {} is literal text


def test_requested_paths_equal_up_to_names_are_one_endpoint() -> None:
    body = {
        "org_id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "spec_excerpt": "",
        "endpoints": [
            {"method": "get", "path": "/users/{id}"},
            {"method": "GET", "path": "/users/{user_id}"},
            {"method": "POST", "path": "/users/{user_id}"},
            {"method": "GET", "path": "/users/me"},
        ]
        + [{"method": "GET", "path": f"/p{i}/{{x{i}}}"} for i in range(30)],
    }
    considered = ScoreRequest.model_validate(body).considered_endpoints()
    assert [e.label for e in considered[:3]] == ["GET /users/{id}", "POST /users/{user_id}", "GET /users/me"]
    assert len(considered) == 25 and considered[-1].label == "GET /p21/{x21}"


def test_prefix_upper_bound_is_above_every_extension() -> None:
    assert prefix_upper_bound("/users/") == "/users0"
    assert prefix_upper_bound("") is None
    assert prefix_upper_bound("\U0010ffff") is None
    assert prefix_upper_bound("/a\U0010ffff") == "/b"
    assert prefix_upper_bound("/\ud7ff") == "/\ue000"


@given(st.text(min_size=1, max_size=6), st.text(max_size=6))
def test_prefix_range_holds_every_extension(prefix: str, rest: str) -> None:
    upper = prefix_upper_bound(prefix)
    if upper is None:
        return
    encode = lambda s: s.encode("utf-8", "surrogatepass")  # noqa: E731 - byte order is what Postgres compares
    assert encode(prefix) <= encode(prefix + rest) < encode(upper)


def test_plans_exclude_more_specific_rivals() -> None:
    plan = plan_endpoints(
        [("GET", "/users/{id}"), ("GET", "/users/me"), ("get", "/users/{other}"), ("GET", "/{a}"), ("POST", "/{a}")],
        {"GET": ["/users/{id}/orders", "/users/admin", "/users/{id}.json", "/x"], "POST": ["/users/{id}"]},
    )
    users, me, repeat, anything, posted = plan.endpoints
    assert me is not None and me.kind == "literal"
    assert repeat is None
    assert users is not None and users.kind == "template" and users.lower == "/users/"
    # Templated rivals in the pattern; literal ones (requested or declared) in the shared exclusion set.
    assert users.pattern == r"^(?!(?:/users/[^/]+\.json)$)/users/[^/]+$"
    assert sorted(plan.excluded) == [("GET", "/users/admin"), ("GET", "/users/me"), ("GET", "/x")]
    assert anything is not None and anything.pattern == "^/[^/]+$"
    assert (anything.kind, anything.lower, anything.upper) == ("template", "/", "0")
    assert posted is not None and posted.pattern == "^/[^/]+$"
    (bare,) = plan_endpoints([("GET", "{a}")]).endpoints
    assert bare is not None and bare.kind == "walk"  # no prefix: no range, the newest-first walk


def test_metacharacters_are_escaped_for_postgres() -> None:
    (plan,) = plan_endpoints([("GET", "/a.b/(c)+/{x}$^|?*[]\\")]).endpoints
    assert plan is not None and plan.pattern == r"^/a\.b/\(c\)\+/[^/]+\$\^\|\?\*\[\]\\$"


def test_huge_rival_sets_are_coarsened_only_towards_exclusion() -> None:
    declared = {"GET": [f"/res{i}/{{id}}" for i in range(20_000)]}
    (plan,) = plan_endpoints([("GET", "/{a}/{b}")], declared).endpoints
    assert plan is not None and plan.coarsened and plan.rivals == 20_000
    assert plan.pattern is not None and len(plan.pattern) <= MAX_EXCLUSION_CHARS + 50
    lookahead = re.fullmatch(r"\^\(\?!\(\?:(.*)\)\$\)(.*)\$", plan.pattern, re.DOTALL)
    assert lookahead is not None
    excluded = re.compile(lookahead.group(1), re.DOTALL)  # the ARE syntax used is Python's too
    for i in (0, 7, 19_999):  # every rival's path stays excluded
        assert excluded.fullmatch(f"/res{i}/42")


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/{a}{b}{c}!", "/abc!", True),
        ("/{a}{b}{c}!", "/ab!", False),  # each parameter takes at least one character
        ("/f/{n}.{e}", "/f/a.b.c", True),
        ("/f/{n}.{e}", "/f/.b", False),
        ("/f/x{n}y{m}z", "/f/xAyBz", True),
        ("/f/x{n}y{m}z", "/f/xyz", False),
        ("/a//{b}", "/a//x", True),
        ("/a//{b}", "/a/q/x", False),  # an empty segment matches only itself
    ],
)
def test_partial_and_adjacent_parameters_match_segment_by_segment(template: str, path: str, expected: bool) -> None:
    assert Template.parse(template).matches(path) is expected


def test_adjacent_parameters_against_a_long_segment_do_not_backtrack() -> None:
    """A regex of six adjacent ``[^/]+`` took minutes on this; the linear matcher answers at once."""
    hostile = Template.parse("/" + "".join(f"{{p{i}}}" for i in range(12)) + "!")
    assert hostile.matches("/" + "a" * 100_000) is False
    assert hostile.matches("/" + "a" * 100_000 + "!") is True
