"""Lambda entry of traverse_answer (placeholder until its issue lands: always 410 Gone)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"statusCode": 410, "body": "{}"}
