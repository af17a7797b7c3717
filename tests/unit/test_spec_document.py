"""Whole OpenAPI documents → a bounded slice (DESIGN §7.2), on real documents and hand-made edge cases."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.drift.models import Endpoint
from service.drift.spec import cache as spec_cache
from service.drift.spec.cache import clear_cache, content_sha256, parse_document
from service.drift.spec.document import OpenApiDocument
from service.drift.spec.paths import (
    Template,
    build_trie,
    is_literal_path,
    most_specific,
    owner_of,
    shape_key,
    shape_of,
    split_segment,
)
from service.drift.spec.slicing import CUT_MARKER, SpecSlice

DATA = Path(__file__).resolve().parents[1] / "data" / "openapi"
BIG = 10**9  # a budget nothing reaches


@cache
def vendored(name: str) -> str:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
        return handle.read()


def doc_of(text: str) -> OpenApiDocument:
    document = parse_document(text)
    assert document is not None
    return document


def eps(*labels: str) -> list[Endpoint]:
    return [Endpoint(method=label.split(" ", 1)[0], path=label.split(" ", 1)[1]) for label in labels]


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def follow(root: Any, ref: str) -> Any:
    from urllib.parse import unquote

    node = root
    for token in unquote(ref[1:]).split("/")[1:]:
        token = unescape(token)
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def assert_closed(piece: SpecSlice, root: Any) -> dict[str, Any]:
    """Every local $ref in the slice resolves inside it, to exactly what the document holds there."""
    sliced = json.loads(piece.text)
    referenced = sliced.get("referenced", {})
    for ref in refs_in([sliced["paths"], list(referenced.values())]):
        if ref.startswith("#"):
            assert ref in referenced, ref
    for ref, value in referenced.items():
        assert value == follow(root, ref), ref
    return sliced


def test_github_comments_beside_issue_number_are_two_operations():
    text = vendored("api.github.com.json.gz")
    document = doc_of(text)
    assert document.version == "3.0.3" and document.title == "GitHub v3 REST API"
    piece = document.slice(
        eps(
            "GET /repos/octo/hello/issues/comments",
            "get /repos/octo/hello/issues/42",
            "PATCH /repos/{o}/{r}/issues/{n}",
            "GET /repos/octo/hello/no-such-thing",
        ),
        BIG,
    )
    assert piece.dropped == []
    assert piece.not_in_contract == ["GET /repos/octo/hello/no-such-thing"]
    assert piece.operations == {
        "GET /repos/octo/hello/issues/comments": "GET /repos/{owner}/{repo}/issues/comments",
        "GET /repos/octo/hello/issues/42": "GET /repos/{owner}/{repo}/issues/{issue_number}",
        "PATCH /repos/{o}/{r}/issues/{n}": "PATCH /repos/{owner}/{repo}/issues/{issue_number}",
    }
    sliced = assert_closed(piece, json.loads(text))
    assert sliced["openapi"] == "3.0.3" and sliced["info"] == {"title": "GitHub v3 REST API"}
    assert sliced["paths"] == {
        "/repos/{owner}/{repo}/issues/comments": {
            "get": json.loads(text)["paths"]["/repos/{owner}/{repo}/issues/comments"]["get"]
        },
        "/repos/{owner}/{repo}/issues/{issue_number}": {
            method: json.loads(text)["paths"]["/repos/{owner}/{repo}/issues/{issue_number}"][method]
            for method in ("get", "patch")
        },
    }
    assert "#/components/schemas/issue-comment" in sliced["referenced"]
    assert "#/components/schemas/issue" in sliced["referenced"]
    assert sliced["requested"]["GET /repos/octo/hello/issues/42"] == "GET /repos/{owner}/{repo}/issues/{issue_number}"


def test_digitalocean_literal_regions_beats_the_id_template_and_refs_into_other_paths_resolve():
    text = vendored("digitalocean.com.json.gz")
    document = doc_of(text)
    piece = document.slice(eps("GET /v2/apps/regions", "GET /v2/apps/4f6c71e2", "DELETE /v2/apps/regions"), BIG)
    assert piece.operations == {
        "GET /v2/apps/regions": "GET /v2/apps/regions",
        "GET /v2/apps/4f6c71e2": "GET /v2/apps/{id}",
        "DELETE /v2/apps/regions": "DELETE /v2/apps/{id}",
    }
    sliced = assert_closed(piece, json.loads(text))
    assert list(sliced["paths"]) == ["/v2/apps/regions", "/v2/apps/{id}"]
    assert set(sliced["paths"]["/v2/apps/{id}"]) == {"get", "delete"}
    # The document's refs are pointers into other paths' operations (~1 escapes): kept by pointer.
    assert any(ref.startswith("#/paths/~1v2~11-clicks/") for ref in sliced["referenced"])


def test_partial_segment_templates_of_a_real_document():
    document = doc_of(vendored("geomark.gov.bc.ca.json.gz"))
    piece = document.slice(
        eps(
            "GET /geomarks/gm-abc.kml",
            "GET /geomarks/gm-abc/point.json",
            "GET /geomarks/gm-abc",
            "GET /geomarks/{id}.{format}",
        ),
        BIG,
    )
    assert piece.operations == {
        "GET /geomarks/gm-abc.kml": "GET /geomarks/{geomarkId}.{fileFormatExtension}",
        "GET /geomarks/gm-abc/point.json": "GET /geomarks/{geomarkId}/point.{fileFormatExtension}",
        "GET /geomarks/{id}.{format}": "GET /geomarks/{geomarkId}.{fileFormatExtension}",
    }
    assert piece.not_in_contract == ["GET /geomarks/gm-abc"]


def test_yaml_document():
    text = vendored("apis.guru.yaml.gz")
    assert not text.lstrip().startswith("{")
    document = doc_of(text)
    assert (document.version_key, document.version, document.title) == ("openapi", "3.0.0", "APIs.guru")
    piece = document.slice(eps("GET /specs/github.com/api.github.com.json", "GET /metrics.json"), BIG)
    assert piece.operations == {
        "GET /specs/github.com/api.github.com.json": "GET /specs/{provider}/{api}.json",
        "GET /metrics.json": "GET /metrics.json",
    }
    import yaml

    assert_closed(piece, yaml.safe_load(text))


def test_swagger_2_definitions():
    text = vendored("petstore.swagger2.json.gz")
    document = doc_of(text)
    assert (document.version_key, document.version) == ("swagger", "2.0")
    piece = document.slice(eps("GET /pet/17", "POST /pet", "GET /pet/findByStatus"), BIG)
    assert piece.operations["GET /pet/17"] == "GET /pet/{petId}"
    assert piece.operations["GET /pet/findByStatus"] == "GET /pet/findByStatus"
    sliced = assert_closed(piece, json.loads(text))
    assert sliced["swagger"] == "2.0"
    assert {"#/definitions/Pet", "#/definitions/Category", "#/definitions/Tag"} <= set(sliced["referenced"])
    assert set(sliced["paths"]) == {"/pet/{petId}", "/pet", "/pet/findByStatus"}


def test_declared_paths_in_document_order():
    document = doc_of(vendored("petstore.swagger2.json.gz"))
    declared = document.declared_paths()
    assert declared["GET"][:3] == ["/pet/findByStatus", "/pet/findByTags", "/pet/{petId}"]
    assert "/pet" in declared["POST"] and "/pet" not in declared["GET"]


# -- hand-made documents -----------------------------------------------------------------------


def shop() -> dict[str, Any]:
    """A document exercising prose, name maps, depth, URI-fragment pointers and cycles."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "description": "prose at the top"},
        "paths": {
            "/users/{id}": {
                "parameters": [{"$ref": "#/components/parameters/Id"}],
                "get": {
                    "operationId": "getUser",
                    "description": "Returns a user. " * 50,
                    "x-codeSamples": [{"lang": "sh", "source": "curl"}],
                    "parameters": [{"name": "expand", "in": "query", "example": "orders"}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"},
                                    "examples": {"one": {"$ref": "#/components/examples/UserExample"}},
                                }
                            },
                        }
                    },
                },
            },
            "/users/me": {"get": {"operationId": "me", "responses": {"200": {"description": "me"}}}},
            "/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "parameters": [{"$ref": "#/paths/~1users~1%7Bid%7D/get/parameters/0"}],
                    "responses": {
                        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/a~0b%20c"}}}}
                    },
                }
            },
            "/secret/{x}": {"get": {"operationId": "secretOp", "responses": {}}},
        },
        "components": {
            "parameters": {"Id": {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}},
            "examples": {"UserExample": {"value": {"id": "u1"}}},
            "schemas": {
                "User": {
                    "type": "object",
                    "description": "A user",
                    "properties": {
                        "description": {"type": "string", "description": "the user's own words"},
                        "x-id": {"type": "string"},
                        "address": {"$ref": "#/components/schemas/Address"},
                        "manager": {"$ref": "#/components/schemas/User"},
                    },
                },
                "Address": {"type": "object", "properties": {"country": {"$ref": "#/components/schemas/Country"}}},
                "Country": {"type": "object", "properties": {"code": {"type": "string", "example": "FR"}}},
                "a~b c": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/a~0b%20c"}}},
            },
        },
    }


def test_uri_fragment_pointers_resolve_and_cycles_terminate():
    root = shop()
    document = doc_of(json.dumps(root))
    piece = document.slice(eps("GET /orders/7", "GET /users/u1"), BIG)
    sliced = assert_closed(piece, root)
    assert set(sliced["referenced"]) == {
        "#/paths/~1users~1%7Bid%7D/get/parameters/0",
        "#/components/schemas/a~0b%20c",
        "#/components/parameters/Id",
        "#/components/schemas/User",
        "#/components/examples/UserExample",
        "#/components/schemas/Address",
        "#/components/schemas/Country",
    }
    assert sliced["referenced"]["#/components/schemas/a~0b%20c"] == root["components"]["schemas"]["a~b c"]
    assert "/secret/{x}" not in piece.text and "secretOp" not in piece.text and "/users/me" not in piece.text
    assert sliced["paths"]["/users/{id}"]["parameters"] == [{"$ref": "#/components/parameters/Id"}]


def test_literal_declared_path_owns_itself_and_names_do_not_matter():
    document = doc_of(json.dumps(shop()))
    piece = document.slice(eps("GET /users/me", "GET /users/{user_id}", "GET /users/x/y", "POST /users/me"), BIG)
    assert piece.operations == {"GET /users/me": "GET /users/me", "GET /users/{user_id}": "GET /users/{id}"}
    assert piece.not_in_contract == ["GET /users/x/y", "POST /users/me"]


def test_budget_pressure_drops_prose_first_keeping_properties_named_like_prose():
    root = shop()
    document = doc_of(json.dumps(root))
    endpoints = eps("GET /users/{id}")
    full = document.slice(endpoints, BIG)
    lean = document.slice(endpoints, len(full.text) - 1)
    assert lean.dropped == ["prose"]
    sliced = assert_closed(lean, _without_prose_reference(root))
    user = sliced["referenced"]["#/components/schemas/User"]
    assert set(user["properties"]) == {"description", "x-id", "address", "manager"}  # names, not prose
    assert "description" not in user and "description" not in user["properties"]["description"]
    operation = sliced["paths"]["/users/{id}"]["get"]
    assert "description" not in operation and "x-codeSamples" not in operation
    assert "example" not in operation["parameters"][0]
    # The example's $ref went with the examples: its target is no longer referenced.
    assert "#/components/examples/UserExample" not in sliced["referenced"]
    assert len(lean.text) <= len(full.text) - 1


def _without_prose_reference(root: dict[str, Any]) -> dict[str, Any]:
    """The shop document as the prose-free slice must show it (written out by hand)."""
    lean = copy.deepcopy(root)
    user = lean["components"]["schemas"]["User"]
    del user["description"]
    del user["properties"]["description"]["description"]
    del lean["components"]["schemas"]["Country"]["properties"]["code"]["example"]
    return lean


def test_budget_pressure_then_drops_the_deepest_references_first():
    document = doc_of(json.dumps(shop()))
    endpoints = eps("GET /users/{id}")
    lean = document.slice(endpoints, len(document.slice(endpoints, BIG).text) - 1)
    depths = {"#/components/parameters/Id": 1, "#/components/schemas/User": 1}
    depths |= {"#/components/schemas/Address": 2, "#/components/schemas/Country": 3}
    assert set(json.loads(lean.text)["referenced"]) == set(depths)
    country = len('"#/components/schemas/Country":') + len(
        json.dumps({"type": "object", "properties": {"code": {"type": "string"}}}, separators=(",", ":"))
    )
    piece = document.slice(endpoints, len(lean.text) - 1)
    assert piece.dropped[0] == "prose" and piece.dropped[1].startswith("refs>depth 2 ")
    assert set(json.loads(piece.text)["referenced"]) == set(depths) - {"#/components/schemas/Country"}
    assert len(piece.text) >= len(lean.text) - country - 1
    shallow = document.slice(endpoints, len(lean.text) - country - 60)
    kept = set(json.loads(shallow.text).get("referenced", {}))
    assert kept <= {ref for ref, depth in depths.items() if depth == 1}


def test_skeletons_keep_method_path_operation_id_and_parameter_names():
    document = doc_of(json.dumps(shop()))
    endpoints = eps("GET /users/{id}", "GET /orders/{o}")
    budget = 270
    piece = document.slice(endpoints, budget)
    assert len(piece.text) <= budget
    assert piece.dropped[0] == "prose" and piece.dropped[-1].startswith("operation bodies")
    sliced = json.loads(piece.text)
    assert sliced["paths"]["/users/{id}"]["get"] == {"operationId": "getUser", "parameters": ["id", "expand"]}
    assert sliced["paths"]["/orders/{order_id}"]["get"] == {"operationId": "getOrder", "parameters": ["expand"]}
    assert "referenced" not in sliced


def test_text_is_cut_and_marked_only_when_even_skeletons_do_not_fit():
    document = doc_of(json.dumps(shop()))
    piece = document.slice(eps("GET /users/{id}", "GET /orders/{o}"), 90)
    assert len(piece.text) == 90 and piece.text.endswith(CUT_MARKER)
    assert piece.dropped[-1] == "text cut"


def test_every_budget_is_respected_on_a_real_document():
    text = vendored("api.github.com.json.gz")
    document = doc_of(text)
    paths = document.declared_paths()["GET"][:25]
    endpoints = eps(*(f"GET {path}" for path in paths))
    for budget in (500_000, 40_000, 8_000, 3_000, 400):
        piece = document.slice(endpoints, budget)
        assert len(piece.text) <= budget, budget
        if "text cut" not in piece.dropped:
            sliced = json.loads(piece.text)
            assert set(sliced["paths"]) == set(paths)


def test_refs_pulling_in_whole_paths_or_the_root_are_not_followed():
    root = {
        "openapi": "3.1.0",
        "info": {"title": "T"},
        "paths": {
            "/a": {"get": {"responses": {"200": {"$ref": "#"}, "201": {"$ref": "#/paths"}}}},
            "/b": {"get": {"responses": {"200": {"$ref": "#/paths/~1c"}, "201": {"$ref": "#/paths/~1c/get"}}}},
            "/c": {"get": {"operationId": "foreign-c"}},
        },
    }
    document = doc_of(json.dumps(root))
    piece = document.slice(eps("GET /a", "GET /b"), BIG)
    assert "foreign-c" not in piece.text and '"/c"' not in piece.text
    assert "referenced" not in json.loads(piece.text)


def test_yaml_with_integer_status_keys_dates_and_anchors():
    text = """\
openapi: 3.0.0
info: {title: Y}
x-date: 2024-01-01
paths:
  /a/{id}:
    get:
      responses:
        200: &ok
          description: fine
          content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}
        201: *ok
components:
  schemas:
    A: {type: object, properties: {when: {type: string, default: 2024-01-01}}}
"""
    document = doc_of(text)
    sliced = json.loads(document.slice(eps("GET /a/1"), BIG).text)
    assert set(sliced["paths"]["/a/{id}"]["get"]["responses"]) == {"200", "201"}
    assert sliced["referenced"]["#/components/schemas/A"]["properties"]["when"]["default"] == "2024-01-01"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "just some prose about GET /users and its paths, openapi",
        "openapi: 3.0.0",
        '{"openapi": "3.0.0"}',
        '{"openapi": "2.0", "paths": {}}',
        '{"swagger": "1.2", "paths": {}}',
        '[{"openapi": "3.0.0", "paths": {}}]',
        '{"openapi": "3.0.0", "paths": []}',
        '{"openapi": "3.0.0", "paths": {}',
        "openapi: 3.0.0\npaths: {}\n---\nopenapi: 3.0.0\npaths: {}\n",
        "openapi: 3.0.0\npaths: [unclosed",
        "openapi: 3.0.0\npaths:\n  ? [a, b]\n  : x\n",
        "openapi: 3.0.0\npaths: " + "[" * 100_000 + "]" * 100_000,
        "openapi: 3.0.0\npaths: &a\n  /x: *a\n",
        '{"openapi": "3.0.0", "paths": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=lambda text: repr(text[:40]),
)
def test_texts_that_are_no_document_give_none(text: str):
    assert parse_document(text) is None


def test_alias_bomb_is_refused():
    lines = ["openapi: 3.0.0", "paths: {}", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    assert parse_document("\n".join(lines)) is None
    assert parse_document("\n".join(lines[:5])) is not None  # a few aliases are fine


def test_parsed_documents_are_cached_by_content():
    clear_cache()
    text = json.dumps(shop())
    first = doc_of(text)
    assert doc_of((text + " ")[:-1]) is first  # an equal text, another object
    assert doc_of(text + " ") is not first
    sha, cached_text = content_sha256((text + " ")[:-1])
    assert cached_text is text and len(sha) == 64
    clear_cache()
    assert doc_of(text) is not first


def test_slices_are_memoised_per_endpoints_and_budget():
    document = doc_of(json.dumps(shop()))
    a = document.slice(eps("GET /users/1"), 5_000)
    assert document.slice(eps("GET /users/1"), 5_000) is a
    assert document.slice(eps("GET /users/1"), 4_000) is not a


def test_content_cache_is_bounded_in_entries_and_characters():
    cache = spec_cache._ContentCache(max_entries=3, max_chars=100)
    entries = [cache.entry(str(n) * 30) for n in range(5)]
    assert cache.entry("4" * 30) is entries[4]
    assert cache.entry("0" * 30) is not entries[0]  # evicted (entries bound)
    big = cache.entry("x" * 101)
    assert cache.entry("x" * 101) is not big  # never kept (characters bound)
    assert sum(len(bucket) for bucket in cache._entries.values()) <= 3
    assert cache._chars <= 100


def test_fingerprint_collisions_are_told_apart_by_content():
    cache = spec_cache._ContentCache(max_entries=8, max_chars=10**6)
    middle = "m" * 10_000
    a = "a" * 5_000 + "1" + middle + "1" + "z" * 5_000
    b = "a" * 5_000 + "2" + middle + "2" + "z" * 5_000
    assert cache.fingerprint(a) == cache.fingerprint(b)
    assert cache.entry(a) is not cache.entry(b)
    assert cache.entry(a).text == a and cache.entry(b).text == b


PATH_TEXT = st.text(alphabet="ab/{}.x\x00", max_size=14)


@given(PATH_TEXT, PATH_TEXT)
def test_shapes_and_segments_agree_with_the_sampler_templates(a: str, b: str):
    assert (shape_key(a) == shape_key(b)) == (shape_of(a) == shape_of(b))
    assert tuple(map(split_segment, a.split("/"))) == Template.parse(a).segments
    assert is_literal_path(a) == Template.parse(a).is_literal


@given(st.lists(PATH_TEXT.map(lambda p: "/" + p), min_size=1, max_size=8), PATH_TEXT.map(lambda p: "/" + p))
def test_most_specific_declared_template_is_the_sampler_owner(declared: list[str], concrete: str):
    """For a concrete path with no equal declared one, the trie walk picks what owner_of picks."""
    if not is_literal_path(concrete) or any(shape_key(d) == concrete for d in declared):
        return
    owner = owner_of(concrete, declared)
    expected = None if owner is None else declared[owner]
    found = most_specific(build_trie(declared), concrete)
    assert found == expected


def test_declared_paths_leave_out_what_no_capture_could_hold():
    """They become the sampler's SQL parameters: NUL or a lone surrogate would fail the query."""
    text = json.dumps(
        {
            "openapi": "3.0.0",
            "paths": {"/ok/{id}": {"get": {}}, "/nul\u0000": {"get": {}}, "/bad\ud800": {"get": {}}},
        }
    )
    document = parse_document(text)
    assert document is not None and document.declared_paths() == {"GET": ["/ok/{id}"]}
