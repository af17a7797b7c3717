"""``template.yaml`` with other parameter defaults, for the SAM checks of its optional parts.

``sam validate`` and ``cfn-lint`` take no parameter values, so ``make sam-check`` lints a copy
whose defaults switch the RDS Proxy and reserved concurrency on (DESIGN §11.3, §11.4).

    python -m devtools.template_variants proxy-on .aws-sam/template-proxy-on.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from devtools.handlers import load_template

VARIANTS: dict[str, dict[str, str]] = {
    "proxy-on": {
        "DatabaseProxySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-db-AbCdEf",
        "ProxyTargetDbInstanceId": "registry-db",
        "VpcSubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "VpcSecurityGroupIds": "sg-0123456789abcdef0",
        "ContractDriftReservedConcurrency": "50",
        "TraverseAnswerReservedConcurrency": "20",
    },
}


def _long_form(value: Any) -> Any:
    """The loader spells ``!Condition X`` as ``Fn::Condition``; CloudFormation's long form is ``Condition``."""
    if isinstance(value, dict):
        return {("Condition" if key == "Fn::Condition" else key): _long_form(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_long_form(item) for item in value]
    return value


def variant(name: str) -> dict[str, Any]:
    template: dict[str, Any] = _long_form(load_template())
    for parameter, default in VARIANTS[name].items():
        template["Parameters"][parameter]["Default"] = default
    return template


def main(argv: list[str]) -> int:
    name, out = argv
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(variant(name), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
