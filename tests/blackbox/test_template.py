"""infra/template.yaml and samconfig.toml as an operator deploys them.

The template is read with a YAML loader that keeps CloudFormation's short tags in their JSON
form (`!Ref X` is `{"Ref": "X"}`, `!If [...]` is `{"Fn::If": [...]}`), and the parts that depend
on parameters are evaluated for given parameter values by `Stack` below (conditions, `Fn::If`,
`Fn::Sub`, `Ref`): what the functions' environment, the policies and the outputs become with
a custom domain, a public URL or a restored table. cfn-lint and `sam validate --lint` (tests/run)
check the template against CloudFormation's schemas; these tests check what it is meant to do.

The last test runs tests/lambda_gateway.py with its access log on, and reads the lines API
Gateway's access log format gives for a routed request and for API Gateway's own 404.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import threading
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import DYNAMODB_ENDPOINT_MISSING, REPO_ROOT, gatehouse_binary, request

sys.path.insert(0, str(REPO_ROOT / "tests"))
import lambda_gateway  # noqa: E402  (tests/, not a package)

TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
SAMCONFIG = REPO_ROOT / "samconfig.toml"
FUNCTIONS = ["RegisterFunction", "DiscoveryFunction", "AuthorizeFunction", "AdminFunction",
             "TokenFunction"]

# Access log field -> the API Gateway context variable it must hold.
ACCESS_LOG_FIELDS = {
    "requestId": "requestId",
    "ip": "identity.sourceIp",
    "requestTime": "requestTime",
    "httpMethod": "httpMethod",
    "routeKey": "routeKey",
    "path": "path",
    "status": "status",
    "protocol": "protocol",
    "responseLength": "responseLength",
    "integrationStatus": "integrationStatus",
    "integrationErrorMessage": "integrationErrorMessage",
    "integrationLatency": "integrationLatency",
    "responseLatency": "responseLatency",
    "errorMessage": "error.message",
    "userAgent": "identity.userAgent",
    "domainName": "domainName",
}

# shared/src/metrics.rs: namespace Gatehouse, dimensions [Stage, Tenant].
BUSINESS_METRICS = [
    "ClientsRegistered", "PendingClientsCreated", "ClientsApproved", "ClientsRejected",
    "PendingClientsExpired", "AccessRequested", "TokensIssued", "RefreshTokenReuseDetected",
    "SignInFailures", "RegistrationsThrottled",
]


# ------------------------------------------------------------------------------ reading


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags in their JSON form."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def resources(template: dict, kind: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _merge(shared, own):
    """SAM's Globals rule: maps merge key by key (the function's value wins), anything else is
    the function's own when it has one."""
    if isinstance(shared, dict) and isinstance(own, dict):
        return {k: _merge(shared.get(k), own.get(k)) if k in shared and k in own
                else own.get(k, shared.get(k)) for k in {**shared, **own}}
    return shared if own is None else own


def function_property(template: dict, function: str, name: str):
    """A function property as SAM merges it with Globals."""
    return _merge(template["Globals"]["Function"].get(name),
                  template["Resources"][function]["Properties"].get(name))


# ---------------------------------------------------------------------------- evaluating


class Stack:
    """The template's values for one set of parameter values (the rest at their defaults), as
    CloudFormation resolves them. A resource is its logical id in angle brackets (`<HttpApi>`,
    `<Table.Arn>`); referring to a resource whose condition is false raises."""

    PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
              "AWS::Partition": "aws", "AWS::StackName": "gatehouse",
              "AWS::URLSuffix": "amazonaws.com"}

    def __init__(self, template: dict, **parameters: str):
        self.template = template
        declared = template["Parameters"]
        unknown = set(parameters) - set(declared)
        assert not unknown, f"no such parameters: {unknown}"
        self.parameters = {k: str(p.get("Default", "")) for k, p in declared.items()}
        self.parameters.update(parameters)

    def condition(self, name: str) -> bool:
        return bool(self.eval(self.template["Conditions"][name]))

    def exists(self, logical_id: str) -> bool:
        resource = self.template["Resources"].get(logical_id)
        assert resource is not None, f"no resource {logical_id}"
        return "Condition" not in resource or self.condition(resource["Condition"])

    def name(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.PSEUDO:
            return self.PSEUDO[name]
        logical_id = name.split(".")[0]
        if not self.exists(logical_id):
            raise LookupError(f"{name} refers to {logical_id}, which this stack does not have")
        return f"<{name}>"

    def eval(self, node):
        if isinstance(node, list):
            return [self.eval(v) for v in node]
        if not isinstance(node, dict):
            return node
        (fn, arg), *rest = node.items()
        if rest or not (fn == "Ref" or fn.startswith("Fn::")):
            return {k: self.eval(v) for k, v in node.items()}
        if fn == "Ref":
            return self.name(arg)
        if fn == "Fn::GetAtt":
            return self.name(".".join(arg))
        if fn == "Fn::If":
            condition, then, otherwise = arg
            return self.eval(then if self.condition(condition) else otherwise)
        if fn == "Fn::Equals":
            a, b = self.eval(arg)
            return a == b
        if fn == "Fn::Not":
            return not self.eval(arg[0])
        if fn == "Fn::And":
            return all(self.eval(arg))
        if fn == "Fn::Or":
            return any(self.eval(arg))
        if fn == "Fn::Condition":
            return self.condition(arg)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            values = {k: self.eval(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}",
                          lambda m: str(values[m.group(1)] if m.group(1) in values
                                        else self.name(m.group(1))), text)
        raise AssertionError(f"no evaluation for {fn}")

    def environment(self, function: str) -> dict:
        return self.eval(function_property(self.template, function, "Environment")["Variables"])

    def output(self, name: str):
        return self.eval(self.template["Outputs"][name]["Value"])

    def everything(self) -> None:
        """Evaluates every resource, global and output this stack has (raises on a reference
        to a resource it does not have)."""
        self.eval(self.template["Globals"])
        for logical_id, resource in self.template["Resources"].items():
            if self.exists(logical_id):
                self.eval(resource.get("Properties", {}))
        for output in self.template["Outputs"].values():
            if "Condition" not in output or self.condition(output["Condition"]):
                self.eval(output["Value"])


# -------------------------------------------------------------------------------- tests


def test_the_template_has_exactly_the_functions_these_tests_know(template):
    assert sorted(resources(template, "AWS::Serverless::Function")) == sorted(FUNCTIONS)


def test_every_function_is_traced(template):
    assert template["Globals"]["Function"].get("Tracing") == "Active"
    for function in FUNCTIONS:
        assert function_property(template, function, "Tracing") == "Active", function


def test_every_function_deploys_through_its_alias_and_rolls_back_on_its_alarms(template):
    parameter = template["Parameters"]["DeploymentType"]
    assert parameter["Default"] == "Canary10Percent5Minutes"
    assert {"AllAtOnce", "Linear10PercentEvery1Minute"} <= set(parameter["AllowedValues"])
    api_5xx = template["Resources"]["Api5xxRateAlarm"]["Properties"]
    api_5xx_name = api_5xx["AlarmName"]
    assert any(m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "5xx"
               and m["MetricStat"]["Metric"]["Namespace"] == "AWS/ApiGateway"
               for m in api_5xx["Metrics"])
    for function in FUNCTIONS:
        assert function_property(template, function, "AutoPublishAlias") == "live", function
        preference = function_property(template, function, "DeploymentPreference")
        assert preference["Type"] == {"Ref": "DeploymentType"}, function
        alarms = preference["Alarms"]
        assert api_5xx_name in alarms, f"{function}: the API 5xx alarm does not roll it back"
        own = [a["Ref"] for a in alarms if isinstance(a, dict) and "Ref" in a]
        assert len(own) == 1, f"{function}: {alarms}"
        alarm = template["Resources"][own[0]]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors"), own[0]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dims["FunctionName"] == {"Ref": function}, own[0]
        assert dims["Resource"] == {"Fn::Sub": f"${{{function}}}:live"}, own[0]
        assert dims["ExecutedVersion"] == {"Fn::GetAtt": [function, "Version.Version"]}, own[0]


def test_access_logs_are_json_with_every_field(template):
    api = template["Resources"]["HttpApi"]["Properties"]
    settings = api["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    group = template["Resources"]["ApiAccessLogs"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fmt = settings["Format"]
    assert "\n" not in fmt, "one line per request"
    assert fmt == lambda_gateway.access_log_format(), "the gateway reads another format"
    # Every field holds its variable, and nothing else.
    placeholders = {field: f"<{variable}>" for field, variable in ACCESS_LOG_FIELDS.items()}
    marked = lambda_gateway.render_access_log(
        fmt, {v: f"<{v}>" for v in ACCESS_LOG_FIELDS.values()} | {"status": 0})
    assert json.loads(marked) == placeholders | {"status": 0}
    # Valid JSON whatever the values: quotes and backslashes in a user agent, missing values.
    line = lambda_gateway.render_access_log(fmt, {
        "status": 429, "identity.userAgent": 'agent "x" \\ y', "error.message": "Too Many Requests"})
    record = json.loads(line)
    assert record["status"] == 429
    assert record["userAgent"] == 'agent "x" \\ y'
    assert record["errorMessage"] == "Too Many Requests"
    assert record["integrationStatus"] == "-"


@pytest.mark.parametrize("url, ok", [
    ("", True),
    ("https://auth.example.com", True),
    ("https://a.b:8443", True),
    ("https://a.b/path", False),
    ("http://a.b", False),
    ("https://a.b/", False),
    ("HTTPS://A.B?x", False),
    ("https://Auth.example.com", False),
    ("https://a.b?x", False),
    ("https://a.b#f", False),
])
def test_public_url_is_an_https_origin(template, url, ok):
    # CloudFormation matches AllowedPattern against the whole value.
    pattern = template["Parameters"]["PublicUrl"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, url)) == ok
    assert template["Parameters"]["PublicUrl"]["ConstraintDescription"]


def test_each_function_has_its_own_throttle_alarm(template):
    throttles = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()
                 if a["Properties"].get("MetricName") == "Throttles"]
    watched = []
    for alarm in throttles:
        assert alarm["Namespace"] == "AWS/Lambda"
        dims = alarm.get("Dimensions", [])
        assert [d["Name"] for d in dims] == ["FunctionName"], f"not one function's: {alarm}"
        watched.append(dims[0]["Value"])
    assert sorted(watched, key=str) == sorted(({"Ref": f} for f in FUNCTIONS), key=str)


def test_every_log_group_and_the_table_outlive_the_stack(template):
    groups = resources(template, "AWS::Logs::LogGroup")
    names = {json.dumps(g["Properties"].get("LogGroupName")) for g in groups.values()}
    for function in FUNCTIONS:
        assert json.dumps({"Fn::Sub": f"/aws/lambda/${{{function}}}"}) in names, function
    assert "ApiAccessLogs" in groups
    for logical_id, resource in [*groups.items(), ("Table", template["Resources"]["Table"])]:
        assert resource.get("DeletionPolicy") == "Retain", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id


def test_the_stage_reaches_the_functions_the_dashboard_and_the_tags(template):
    assert template["Globals"]["Function"]["Environment"]["Variables"]["GATEHOUSE_STAGE"] == {
        "Ref": "Stage"}
    assert template["Globals"]["Function"]["Tags"]["Stage"] == {"Ref": "Stage"}
    stack = Stack(template, Stage="dev")
    assert "dev" in stack.eval(template["Resources"]["Dashboard"]["Properties"]["DashboardName"])
    for function in FUNCTIONS:
        assert stack.environment(function)["GATEHOUSE_STAGE"] == "dev"


def _dashboard(template) -> tuple[str, dict]:
    body, variables = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return body, variables


def test_the_dashboard_is_json_and_names_every_metric(template):
    body, variables = _dashboard(template)
    # Every ${...} is something Fn::Sub can resolve.
    for name in re.findall(r"\$\{([^}]+)\}", body):
        assert (name in variables or name in template["Parameters"] or name in Stack.PSEUDO
                or name.split(".")[0] in template["Resources"]), f"${{{name}}} resolves to nothing"
    # Each ${X} as <X> (no JSON special characters), so the body must be JSON as it stands.
    dashboard = json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))
    metrics = [m for w in dashboard["widgets"] for m in w["properties"].get("metrics", [])]
    plain = [m for m in metrics if isinstance(m[0], str)]
    expressions = [m[0]["expression"] for m in metrics if isinstance(m[0], dict)]
    api = [(m[1], m[-1]["stat"]) for m in plain if m[:4] == ["AWS/ApiGateway", m[1], "ApiId", "<HttpApi>"]]
    assert {("Count", "Sum"), ("4xx", "Sum"), ("5xx", "Sum"), ("Latency", "p50"),
            ("Latency", "p99")} <= set(api), api
    lambda_metrics = [("Invocations", "Sum"), ("Errors", "Sum"), ("Throttles", "Sum"),
                      ("Duration", "p99"), ("ConcurrentExecutions", "Maximum")]
    for name, stat in lambda_metrics:
        functions = [m[3] for m in plain
                     if m[:3] == ["AWS/Lambda", name, "FunctionName"] and m[-1]["stat"] == stat]
        assert sorted(functions) == sorted(f"<{f}>" for f in FUNCTIONS), name
    table = [m[1] for m in plain if m[:4] == ["AWS/DynamoDB", m[1], "TableName", "<TableName>"]]
    assert {"ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits"} <= set(table), table
    for name in ["ThrottledRequests", "SystemErrors"]:
        assert (f"SEARCH('{{AWS/DynamoDB,TableName,Operation}} MetricName=\"{name}\" "
                f"TableName=\"<TableName>\"', 'Sum', 300)") in expressions, name
    for name in BUSINESS_METRICS:
        assert (f"SUM(SEARCH('{{Gatehouse,Stage,Tenant}} MetricName=\"{name}\" "
                f"Stage=\"<Stage>\"', 'Sum', 300))") in expressions, name


def test_reused_refresh_tokens_raise_an_alarm(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    queries = [m["Expression"] for a in alarms for m in a["Properties"].get("Metrics", [])
               if "RefreshTokenReuseDetected" in json.dumps(m.get("Expression", ""))]
    assert len(queries) == 1, queries
    query = Stack(load_template(), Stage="dev").eval(queries[0])
    assert query == ("SELECT SUM(RefreshTokenReuseDetected) FROM SCHEMA(Gatehouse, Stage, Tenant) "
                     "WHERE Stage = 'dev'")


def _bases(stack: Stack) -> dict:
    return {name: stack.output(name) for name in ["ApiUrl", "IssuerPattern", "AdminConsolePattern"]}


def test_the_public_url_follows_public_url_then_the_domain_then_the_request(template):
    execute_api = "https://<HttpApi>.execute-api.us-east-1.amazonaws.com"
    cases = [
        ({}, "", execute_api, False),
        ({"DomainName": "auth.example.com", "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
         "https://auth.example.com", "https://auth.example.com", True),
        ({"PublicUrl": "https://cdn.example.com"}, "https://cdn.example.com",
         "https://cdn.example.com", False),
        ({"PublicUrl": "https://cdn.example.com", "DomainName": "auth.example.com",
          "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x"},
         "https://cdn.example.com", "https://cdn.example.com", True),
    ]
    for parameters, env, base, domain in cases:
        stack = Stack(template, **parameters)
        for function in FUNCTIONS:
            assert stack.environment(function)["GATEHOUSE_PUBLIC_URL"] == env, parameters
        assert _bases(stack) == {"ApiUrl": base, "IssuerPattern": f"{base}/t/{{tenant}}",
                                 "AdminConsolePattern": f"{base}/t/{{tenant}}/admin"}, parameters
        api = stack.eval(template["Resources"]["HttpApi"]["Properties"])
        assert api["DisableExecuteApiEndpoint"] is domain, parameters
        assert stack.exists("CustomDomain") is domain and stack.exists("CustomDomainMapping") is domain
        assert not stack.exists("CustomDomainRecord")
        stack.everything()
    with_zone = Stack(template, DomainName="auth.example.com", HostedZoneId="Z123",
                      CertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/x")
    assert with_zone.exists("CustomDomainRecord")
    record = with_zone.eval(template["Resources"]["CustomDomainRecord"]["Properties"])
    assert record["Name"] == "auth.example.com" and record["HostedZoneId"] == "Z123"


def test_a_domain_without_a_certificate_is_refused(template):
    rules = template["Rules"]
    checks = []
    for rule in rules.values():
        for assertion in rule["Assertions"]:
            checks.append((rule.get("RuleCondition", True), assertion["Assert"]))

    def refused(**parameters) -> bool:
        stack = Stack(template, **parameters)
        return any(stack.eval(condition) and not stack.eval(check) for condition, check in checks)

    assert refused(DomainName="auth.example.com")
    assert not refused(DomainName="auth.example.com",
                       CertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/x")
    assert not refused()
    assert refused(HostedZoneId="Z123")


def test_an_existing_table_replaces_the_stack_table_everywhere(template):
    stack = Stack(template, ExistingTableName="gatehouse-restored")
    assert not stack.exists("Table")
    stack.everything()  # nothing refers to the table the stack no longer has
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/gatehouse-restored"
    for function in FUNCTIONS:
        assert stack.environment(function)["GATEHOUSE_TABLE"] == "gatehouse-restored"
        policies = stack.eval(template["Resources"][function]["Properties"]["Policies"])
        for statement in (s for p in policies for s in p["Statement"]):
            if statement["Action"][0].startswith("dynamodb:"):
                assert statement["Resource"] in (arn, f"{arn}/index/gsi1"), statement["Sid"]
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        for dim in stack.eval(alarm["Properties"].get("Dimensions", [])):
            if dim["Name"] == "TableName":
                assert dim["Value"] == "gatehouse-restored"
    assert stack.eval(_dashboard(template)[1])["TableName"] == "gatehouse-restored"
    assert stack.output("TableName") == "gatehouse-restored"
    # By default, the stack's own table.
    default = Stack(template)
    assert default.environment("TokenFunction")["GATEHOUSE_TABLE"] == "<Table>"
    assert default.output("TableName") == "<Table>"
    default.everything()


def _samconfig_parameters(config: dict, env: str, command: str) -> dict:
    return {**config.get(env, {}).get("global", {}).get("parameters", {}),
            **config.get(env, {}).get(command, {}).get("parameters", {})}


def test_samconfig_has_dev_and_prod_and_keeps_the_default(template):
    config = tomllib.loads(SAMCONFIG.read_text())
    default = _samconfig_parameters(config, "default", "deploy")
    assert default["stack_name"] == "gatehouse" and "parameter_overrides" not in default
    expected = {"dev": ("gatehouse-dev", "dev", "AllAtOnce"),
                "prod": ("gatehouse-prod", "prod", "Canary10Percent5Minutes")}
    for env, (stack_name, stage, deployment) in expected.items():
        for command in ["build", "validate", "deploy"]:
            assert _samconfig_parameters(config, env, command).get("template_file"), (env, command)
        deploy = _samconfig_parameters(config, env, "deploy")
        assert deploy["stack_name"] == stack_name
        overrides = dict(pair.split("=", 1) for pair in deploy["parameter_overrides"].split())
        assert overrides["Stage"] == stage and overrides["DeploymentType"] == deployment, env
        for name, value in overrides.items():
            parameter = template["Parameters"][name]  # a parameter the template has
            if "AllowedValues" in parameter:
                assert value in [str(v) for v in parameter["AllowedValues"]], (env, name)
            if "AllowedPattern" in parameter:
                assert re.fullmatch(parameter["AllowedPattern"], value), (env, name)
    assert _samconfig_parameters(config, "dev", "deploy")["parameter_overrides"].count(
        "LogLevel=debug") == 1


# ---------------------------------------------------------- the gateway's access log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gateway_with_access_log(tmp_path):
    access_log = tmp_path / "access.log"
    with start_lambda_gateway(tmp_path, {"GATEHOUSE_GATEWAY_ACCESS_LOG": str(access_log)}) as base:
        yield base, access_log


@contextlib.contextmanager
def start_lambda_gateway(tmp_path, extra_env: dict):
    """tests/lambda_gateway.py on a free port, on a fresh table in moto (signing keys sealed
    with a KMS key it creates there), each function's output in `tmp_path/<binary>.log`;
    yields its base URL."""
    endpoint = os.environ.get("GATEHOUSE_TEST_DYNAMODB_ENDPOINT", "").strip()
    if not endpoint:
        pytest.fail(DYNAMODB_ENDPOINT_MISSING, pytrace=False)
    bin_dir = gatehouse_binary().parent
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GATEHOUSE_") and not k.startswith("AWS_")}
    env.update(GATEHOUSE_TEST_DYNAMODB_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", **extra_env)
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "lambda_gateway.py"), "--port", str(port),
         "--bin-dir", str(bin_dir), "--log-dir", str(tmp_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []  # drained all along, so the gateway never blocks on a full pipe
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any("lambda gateway ready on" in line for line in output):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Lambda gateway did not start:\n{''.join(output)}",
                            pytrace=False)
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_gateway_writes_api_gateway_access_logs(gateway_with_access_log):
    base, access_log = gateway_with_access_log
    found = request("GET", f"{base}/.well-known/oauth-authorization-server/t/demo", None,
                    {"User-Agent": 'probe "1"'})
    missing = request("GET", f"{base}/no/such/route", None, {"User-Agent": "probe 2"})
    assert (found[0], missing[0]) == (200, 404)
    lines = access_log.read_text().splitlines()
    assert len(lines) == 2, lines
    records = [json.loads(line) for line in lines]
    for record in records:
        assert set(record) == set(ACCESS_LOG_FIELDS), record
        assert record["httpMethod"] == "GET" and record["protocol"] == "HTTP/1.1"
        assert record["domainName"] == "127.0.0.1" and record["ip"] == "127.0.0.1"
        assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000", record["requestTime"])
        assert int(record["responseLatency"]) >= 0
    ok, not_found = records
    assert ok["status"] == 200 and ok["userAgent"] == 'probe "1"'
    assert ok["routeKey"] == "GET /.well-known/oauth-authorization-server/t/{tenant}"
    assert ok["path"] == "/.well-known/oauth-authorization-server/t/demo"
    assert ok["integrationStatus"] == "200" and ok["errorMessage"] == "-"
    assert int(ok["responseLength"]) == len(found[2])
    assert not_found["status"] == 404 and not_found["routeKey"] == "-"
    assert not_found["errorMessage"] == "Not Found"
    assert not_found["integrationStatus"] == "-" and not_found["integrationLatency"] == "-"
    assert not_found["requestId"] != ok["requestId"]
