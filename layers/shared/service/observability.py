"""One place that builds the Powertools Logger, Tracer and Metrics every module imports.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` and the namespace from
``POWERTOOLS_METRICS_NAMESPACE`` (set in the template), so nothing here is per-function.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ApiContractService")
