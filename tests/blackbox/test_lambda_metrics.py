"""Business metrics in CloudWatch Embedded Metric Format on the Lambda path: the real function
binaries behind tests/lambda_gateway.py (API Gateway HTTP API events, a Lambda Runtime API),
on DynamoDB and KMS in moto. Each function writes, after an invocation that counted something,
one EMF document per tenant on stdout (shared/src/metrics.rs); CloudWatch Logs turns those into
the metrics infra/template.yaml's dashboard and alarms read. Here stdout is each function's log
file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import DEMO_ADMIN_PASSWORD, DEMO_USER_PASSWORD

if "test_tokens" not in sys.modules:
    pytest.register_assert_rewrite("test_tokens")

from test_template import start_lambda_gateway  # noqa: E402
from test_tokens import Flow, assert_tokens, exchange, refresh, refreshing_client  # noqa: E402


def emf(log: Path) -> list[dict]:
    """The EMF documents in a function's output (other lines are its JSON logs)."""
    if not log.exists():
        return []
    docs = []
    for line in log.read_text().splitlines():
        if line.startswith('{"_aws"'):
            docs.append(json.loads(line))
    return docs


def totals(docs: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for doc in docs:
        for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            out[metric["Name"]] = out.get(metric["Name"], 0) + doc[metric["Name"]]
    return out


def assert_shape(doc: dict) -> None:
    directive = doc["_aws"]
    assert isinstance(directive["Timestamp"], int) and abs(directive["Timestamp"] / 1000 - time.time()) < 300
    (metrics,) = directive["CloudWatchMetrics"]
    assert metrics["Namespace"] == "Gatehouse"
    assert metrics["Dimensions"] == [["Stage", "Tenant"]]
    assert doc["Stage"] == "local" and doc["Tenant"] == "demo", doc
    for metric in metrics["Metrics"]:
        assert metric["Unit"] == "Count", metric
        assert isinstance(doc[metric["Name"]], int) and doc[metric["Name"]] > 0, doc


def test_the_functions_emit_business_metrics_in_embedded_metric_format(tmp_path):
    env = {"GATEHOUSE_DEMO_ADMIN_PASSWORD": DEMO_ADMIN_PASSWORD,
           "GATEHOUSE_DEMO_USER_PASSWORD": DEMO_USER_PASSWORD,
           "GATEHOUSE_REFRESH_GRACE": "0", "GATEHOUSE_REGISTRATION_RATE_LIMIT": "0"}
    with start_lambda_gateway(tmp_path, env) as base:
        server = SimpleNamespace(base=base, issuer=f"{base}/t/demo",
                                 register_url=f"{base}/t/demo/oauth/register")
        flow = Flow(server)
        # A registration, its approval on the consent page, a code exchange (KMS unwraps the
        # tenant's signing key), a refresh, and the first refresh token presented again.
        client = refreshing_client(flow)
        tokens = assert_tokens(exchange(server, client, flow.code(client)), refresh_token=True)
        assert_tokens(refresh(server, client, tokens["refresh_token"]), refresh_token=True)
        time.sleep(1.1)  # past the grace period (0 s here): reuse, not a concurrent refresh
        reused = refresh(server, client, tokens["refresh_token"])
        assert reused[0] == 400, reused

    register = emf(tmp_path / "gatehouse-register.log")
    admin = emf(tmp_path / "gatehouse-admin.log")  # the consent page posts its approval there
    token = emf(tmp_path / "gatehouse-token.log")
    for doc in register + admin + token:
        assert_shape(doc)
    assert totals(register) == {"ClientsRegistered": 1, "PendingClientsCreated": 1}
    assert totals(admin) == {"ClientsApproved": 1}, admin
    assert totals(token) == {"TokensIssued": 2, "RefreshTokenReuseDetected": 1}, token
    # The discovery and authorize functions (metadata, sign-in, the code) counted nothing, and
    # wrote no document for it.
    assert emf(tmp_path / "gatehouse-discovery.log") == []
    assert emf(tmp_path / "gatehouse-authorize.log") == []
