"""Wire models of traverse_answer: what is accepted, how the reply is spelled."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.traverse.engine import parse_node_id
from service.traverse.models import HaltReason, TraverseError, TraverseReply, TraverseRequest


def test_everything_is_optional_and_graph_defaults():
    request = TraverseRequest.model_validate({})
    assert (request.text, request.max_hops, request.budget_ms, request.graph) == (None, None, None, "default")
    assert request.edge_types is None
    assert request.nodes_per_hop() == 25


@pytest.mark.parametrize(
    "payload",
    [
        {"max_hops": "3"},
        {"max_hops": 3.0},
        {"budget_ms": True},
        {"text": 1},
        {"graph": ""},
        {"edge_types": []},
        {"edge_types": ["x"] * 33},
        {"max_nodes_per_hop": "5"},
    ],
)
def test_wrong_types_and_sizes_are_rejected(payload):
    with pytest.raises(ValidationError):
        TraverseRequest.model_validate(payload)


def test_out_of_range_numbers_are_accepted_then_clamped():
    request = TraverseRequest.model_validate({"max_hops": -5, "budget_ms": 10**12, "max_nodes_per_hop": 1000})
    assert request.nodes_per_hop() == 100
    assert TraverseRequest(max_nodes_per_hop=0).nodes_per_hop() == 1


def test_reply_serialises_schema_field():
    reply = TraverseReply(
        hops_executed=0,
        elapsed_ms=3,
        hard_wall_ms_effective=5000,
        max_hops_effective=3,
        hard_wall_cutoff=False,
        budget_breached=False,
        anchor_cid="bafkrei",
        halt_reason=HaltReason.NO_SEEDS,
        hops=[],
    )
    dumped = reply.model_dump(mode="json")
    assert dumped["schema"] == "mnem.v1.traverse_answer"
    assert dumped["halt_reason"] == "no_seeds"
    assert list(dumped) == [
        "schema",
        "hops_executed",
        "elapsed_ms",
        "hard_wall_ms_effective",
        "max_hops_effective",
        "hard_wall_cutoff",
        "budget_breached",
        "anchor_cid",
        "halt_reason",
        "hops",
    ]


def test_error_envelope_schema():
    assert TraverseError(error="x", error_code="VALIDATION_FAILED", status=400).model_dump()["schema"] == "mnem.v1.err"


def test_parse_node_id():
    assert parse_node_id(" 6F9619FF-8B86-D011-B42D-00C04FC964FF ") is not None
    assert parse_node_id("not a uuid") is None
    assert parse_node_id("") is None
