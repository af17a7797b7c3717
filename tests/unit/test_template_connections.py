"""template.yaml's RDS Proxy and reserved concurrency (DESIGN §11.3, §11.4): what each switch does."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.handlers import load_template
from devtools.template_variants import VARIANTS, variant

FUNCTIONS = ("ContractDriftFunction", "TraverseAnswerFunction")
PROXY_RESOURCES = ("DatabaseProxy", "DatabaseProxyTargetGroup", "DatabaseProxyRole")


def evaluate(node: Any, template: dict[str, Any], values: dict[str, str]) -> Any:
    """The few intrinsic functions the template's Conditions use, for the given parameter values."""
    if not isinstance(node, dict):
        return node
    ((name, arg),) = node.items()
    if name == "Ref":
        return values.get(arg, template["Parameters"][arg].get("Default", ""))
    if name == "Fn::Join":
        items = evaluate(arg[1], template, values)
        return arg[0].join(items.split(",") if isinstance(items, str) else items)
    if name == "Fn::Equals":
        return str(evaluate(arg[0], template, values)) == str(evaluate(arg[1], template, values))
    if name == "Fn::Not":
        return not evaluate(arg[0], template, values)
    if name == "Fn::And":
        return all(evaluate(item, template, values) for item in arg)
    if name == "Fn::Or":
        return any(evaluate(item, template, values) for item in arg)
    if name in ("Condition", "Fn::Condition"):
        return evaluate(template["Conditions"][arg], template, values)
    raise AssertionError(f"unexpected {name}")


def condition(name: str, **values: str) -> bool:
    template = load_template()
    return bool(evaluate(template["Conditions"][name], template, values))


def test_proxy_is_off_by_default_and_on_with_a_secret_and_a_target():
    assert not condition("UseDatabaseProxy")
    secret = VARIANTS["proxy-on"]["DatabaseProxySecretArn"]
    assert not condition("UseDatabaseProxy", DatabaseProxySecretArn=secret)  # no target
    assert condition("UseDatabaseProxy", DatabaseProxySecretArn=secret, ProxyTargetDbInstanceId="db")
    assert condition("UseDatabaseProxy", DatabaseProxySecretArn=secret, ProxyTargetDbClusterId="aurora")


@pytest.mark.parametrize(("value", "reserved"), [("", False), ("0", False), ("25", True)], ids=["empty", "zero", "set"])
def test_reserved_concurrency_empty_or_zero_is_unreserved(value, reserved):
    assert condition("HasDriftReservedConcurrency", ContractDriftReservedConcurrency=value) is reserved
    assert condition("HasTraverseReservedConcurrency", TraverseAnswerReservedConcurrency=value) is reserved
    functions = load_template()["Resources"]
    assert functions["ContractDriftFunction"]["Properties"]["ReservedConcurrentExecutions"]["Fn::If"][1] == {
        "Ref": "ContractDriftReservedConcurrency"
    }


def test_proxy_requires_iam_and_tls_and_the_functions_use_it():
    template = variant("proxy-on")
    resources = template["Resources"]
    for name in PROXY_RESOURCES:
        assert resources[name]["Condition"] == "UseDatabaseProxy"
    proxy = resources["DatabaseProxy"]["Properties"]
    assert proxy["EngineFamily"] == "POSTGRESQL" and proxy["RequireTLS"] is True
    assert proxy["Auth"] == [
        {"AuthScheme": "SECRETS", "SecretArn": {"Ref": "DatabaseProxySecretArn"}, "IAMAuth": "REQUIRED"}
    ]
    role = resources["DatabaseProxyRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert role == [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": {"Ref": "DatabaseProxySecretArn"}}
    ]
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    on_url = env["DATABASE_URL"]["Fn::If"][1]["Fn::Sub"]
    assert "${DatabaseProxy.Endpoint}" in on_url and "sslmode=verify-full" in on_url
    assert env["DATABASE_IAM_AUTH"] == {"Fn::If": ["UseDatabaseProxy", "true", "false"]}
    for function in FUNCTIONS:
        statements = resources[function]["Properties"]["Policies"][0]["Statement"]
        connect = [s["Fn::If"][1] for s in statements if "Fn::If" in s and s["Fn::If"][0] == "UseDatabaseProxy"]
        assert [c["Action"] for c in connect] == ["rds-db:connect"]
