"""Each Lambda function's IAM policy in infra/template.yaml is exactly what its code uses.

Every DynamoDB-mode `gatehouse serve` of the suite records each item access it makes, tagged
with the Lambda function whose route it served (`GATEHOUSE_DYNAMODB_ACCESS_LOG`; the SDK
interceptor in shared/src/store/dynamo.rs sees every call, and a transaction's parts are the
actions IAM evaluates for them: `PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`).
This module runs last (its name sorts last) and holds the template to that record both ways:

- every access is granted: the function's policy has a statement with that action, on the
  table or on the index the access used, whose `dynamodb:LeadingKeys` admits the partition key's
  item-type prefix (shared/storage-schema.md lists them) — otherwise the function answers 503
  on AWS although every local test passes;
- the same for notification events (docs/events.md): a function that publishes one records
  `events:PutEvents` on `EVENTBUS` (shared/src/events.rs; whether or not a bus is configured),
  and must be granted exactly that action on the stack's bus (`EventBus.Arn`), under the
  source `gatehouse` — otherwise every put is refused on AWS and, since a failed put never
  fails the request, the administrators are silently never told;
- every grant is used, or listed below with the reason it is needed although the suite never
  exercises it — otherwise a function holds a power its code does not need (least privilege:
  only the admin function may approve a client, only the token function reads private keys).

The second direction needs the whole suite to have run (both stores, every module): on a
partial run it is skipped with the reason.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
import yaml

from conftest import DYNAMODB_ACCESS_LOG, REPO_ROOT, Server, request

# Notification events: the one non-DynamoDB action a function may hold, recorded by
# shared/src/events.rs as ("events:PutEvents", "EVENTBUS") and granted only on this resource.
PUT_EVENTS = "events:PutEvents"
EVENT_BUS_PREFIX = "EVENTBUS"
EVENT_BUS_RESOURCES = ("EventBus.Arn", ["EventBus", "Arn"])  # !GetAtt, short or list form
EVENT_SOURCE = "gatehouse"  # shared/src/events.rs, EVENT_SOURCE
# KMS calls on the key that wraps signing keys (shared/src/keywrap.rs, KMS_KEY_PREFIX), and the
# one shape a KMS statement may have: the stack's key, with both encryption-context keys present.
KMS_PREFIX = "SIGNINGKEYS"
KMS_ACTIONS = {"kms:GenerateDataKey", "kms:Decrypt"}
KMS_RESOURCES = ("SigningKeysKey.Arn", ["SigningKeysKey", "Arn"])
KMS_CONDITION = {"Null": {"kms:EncryptionContext:gatehouse:tenant": "false",
                          "kms:EncryptionContext:gatehouse:kid": "false"}}

TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
# The two DynamoDB resources a statement may name, as the loader below reads them: the table in
# use (the stack's `Table`, or the one `ExistingTableName` names) and its index gsi1.
_EXISTING_TABLE = ("arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}"
                   ":table/${ExistingTableName}")
TABLE_RESOURCES = {
    json.dumps(["CreateTable", "Table.Arn", _EXISTING_TABLE]): "table",
    json.dumps(["CreateTable", "${Table.Arn}/index/gsi1", _EXISTING_TABLE + "/index/gsi1"]): "index",
}
FUNCTIONS = {
    "RegisterFunction": "register",
    "DiscoveryFunction": "discovery",
    "AuthorizeFunction": "authorize",
    "AdminFunction": "admin",
    "TokenFunction": "token",
}

# Grants the black-box suite cannot exercise, each with its reason: (function, action, pattern,
# resource) -> reason. Keep this list short; a grant without a use or a reason fails the test.
UNEXERCISED = {
    ("token", "PutItem", "SIGNKEY#*", "table"):
        "the first signing key is created by the token function on AWS; `gatehouse serve` seeds "
        "it at start, outside any route",
    ("token", "PutItem", "JWKS#*", "table"):
        "written with the private half when the token function creates the first signing key",
    ("token", "kms:GenerateDataKey", KMS_PREFIX, "kms"):
        "a data key is made when the token function creates a tenant's first signing key; the "
        "suite's servers create them at start, outside any route",
    # Read-backs after a write whose answer was lost (was the item there ours? see `own_write`
    # and `finish_authorization` in shared/src/store/dynamo.rs): test_database_faults.py loses
    # answers on purpose, but which step a lost answer hits varies from run to run.
    ("authorize", "GetItem", "AUTHREQ#*", "table"): "read-back of a parked request after a lost answer",
    ("authorize", "GetItem", "SESSION#*", "table"): "read-back of a new session after a lost answer",
    ("authorize", "GetItem", "CODE#*", "table"): "read-back of an issued code after a lost answer",
    ("authorize", "GetItem", "CLIENT#*", "table"):
        "read-back of a new metadata-document client after a lost answer",
    ("admin", "GetItem", "CODE#*", "table"): "read-back of the approval's code after a lost answer",
    ("admin", "GetItem", "CLIENT#*", "table"):
        "read-back of a client created by an administrator after a lost answer",
    ("token", "PutItem", "CLIENT#*", "table"):
        "a metadata-document client whose cached document went stale is fetched again at the "
        "token endpoint and its cache written back (shared/tests/lambda_events.rs runs it "
        "through the token function; the black-box metadata-document tests run embedded)",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`...) kept as plain
    values: `!GetAtt Table.Arn` reads as the string "Table.Arn"."""


def _tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_CfnLoader.add_multi_constructor("!", _tag)


def grants() -> dict[str, set[tuple[str, str, str]]]:
    """function -> {(action, LeadingKeys pattern, "table" | "index" | "bus")} from the template;
    an `events:PutEvents` grant reads ("events:PutEvents", "EVENTBUS", "bus")."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    out: dict[str, set[tuple[str, str, str]]] = {}
    for resource, name in FUNCTIONS.items():
        props = template["Resources"][resource]["Properties"]
        found: set[tuple[str, str, str]] = set()
        for policy in props.get("Policies", []):
            for st in policy.get("Statement", []):
                assert st.get("Effect") == "Allow", f"{resource}: unexpected statement {st}"
                res = st["Resource"]
                conditions = st.get("Condition", {})
                if any(a.startswith("events:") for a in st["Action"]):
                    found.add(_event_bus_grant(resource, st))
                    continue
                if any(a.startswith("kms:") for a in st["Action"]):
                    found |= _kms_grants(resource, st)
                    continue
                kind = TABLE_RESOURCES.get(json.dumps(res))
                assert kind, (
                    f"{resource}: statement {st.get('Sid')} names {res!r}, not the table in use "
                    "or its gsi1 (the !If on CreateTable the other statements use)")
                patterns = [p for cond in conditions.values()
                            for key, values in cond.items() if key == "dynamodb:LeadingKeys"
                            for p in values]
                assert patterns, f"{resource}: statement {st.get('Sid')} has no LeadingKeys"
                for action in st["Action"]:
                    assert action.startswith("dynamodb:"), action
                    for pattern in patterns:
                        found.add((action.removeprefix("dynamodb:"), pattern, kind))
        out[name] = found
    return out


def _event_bus_grant(resource: str, st: dict) -> tuple[str, str, str]:
    """The one shape an EventBridge statement may have: `events:PutEvents` alone, on the stack's
    bus, for the source Gatehouse publishes under (nothing else: a function that could put
    events under any source could pass them off as another producer's)."""
    sid = st.get("Sid")
    assert st["Action"] == [PUT_EVENTS], f"{resource}: statement {sid} grants {st['Action']}"
    assert st["Resource"] in EVENT_BUS_RESOURCES, (
        f"{resource}: statement {sid} must name the stack's bus (!GetAtt EventBus.Arn), "
        f"not {st['Resource']!r}")
    assert st.get("Condition") == {"StringEquals": {"events:source": [EVENT_SOURCE]}}, (
        f"{resource}: statement {sid} must be limited to events:source {EVENT_SOURCE!r}: "
        f"{st.get('Condition')}")
    return (PUT_EVENTS, EVENT_BUS_PREFIX, "bus")


def _kms_grants(resource: str, st: dict) -> set[tuple[str, str, str]]:
    """A KMS statement: only the two envelope-encryption actions, on the stack's signing-keys
    key, with the encryption context every call of shared/src/keywrap.rs carries."""
    sid = st.get("Sid")
    assert set(st["Action"]) <= KMS_ACTIONS, f"{resource}: statement {sid} grants {st['Action']}"
    assert st["Resource"] in KMS_RESOURCES, (
        f"{resource}: statement {sid} must name !GetAtt SigningKeysKey.Arn, not {st['Resource']!r}")
    assert st.get("Condition") == KMS_CONDITION, (
        f"{resource}: statement {sid} must require the gatehouse encryption context: "
        f"{st.get('Condition')}")
    return {(action, KMS_PREFIX, "kms") for action in st["Action"]}


def accesses() -> set[tuple[str, str, str, str]]:
    """{(function, action, prefix, "table" | "index" | "bus")} recorded by the suite's servers."""
    if not DYNAMODB_ACCESS_LOG.exists():
        return set()
    out = set()
    for line in DYNAMODB_ACCESS_LOG.read_text().splitlines():
        rec = json.loads(line)
        if rec["action"].startswith("events:"):
            kind = "bus"
        elif rec["action"].startswith("kms:"):
            kind = "kms"
        else:
            kind = "index" if rec.get("index") else "table"
        out.add((rec["function"], rec["action"], rec["prefix"], kind))
    return out


def admits(pattern: str, prefix: str) -> bool:
    return fnmatch.fnmatchcase(prefix, pattern)


def whole_suite_ran(session) -> str | None:
    """None when every black-box module ran unfiltered; else why not."""
    opts = session.config.option
    if getattr(opts, "keyword", "") or getattr(opts, "markexpr", "") or getattr(opts, "deselect", None):
        return "the run was filtered (-k, -m or --deselect)"
    here = Path(__file__).parent
    ran = {Path(str(item.fspath)).name for item in session.items}
    missing = sorted(p.name for p in here.glob("test_*.py") if p.name not in ran)
    if missing:
        return f"modules not run: {', '.join(missing)}"
    return None


# One request per function, each past the tenant lookup. The rest of the suite reaches every
# function's tenant read too, but only when its request happens to miss the per-process tenant
# cache (10 s), which depends on the machine's speed; a server without the cache makes it sure.
TENANT_READS = [
    ("POST", "/t/demo/oauth/register", {}),  # register
    ("GET", "/.well-known/oauth-authorization-server/t/demo", None),  # discovery
    ("GET", "/t/demo/oauth/authorize", None),  # authorize
    ("POST", "/t/demo/oauth/token", b"grant_type=password"),  # token
    ("GET", "/t/demo/api/v1/settings", None),  # admin
]


@pytest.fixture(scope="module")
def every_function_read_its_tenant(tmp_path_factory):
    srv = Server("dynamodb", {"GATEHOUSE_TENANT_CACHE_TTL": "0"},
                 tmp_path_factory.mktemp("gatehouse-tenant-reads"))
    try:
        srv.start()
        for method, path, body in TENANT_READS:
            headers = ({"Content-Type": "application/x-www-form-urlencoded"}
                       if isinstance(body, bytes) else None)
            status = request(method, srv.base + path, body, headers)[0]
            assert status < 500, (method, path, status)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def used(every_function_read_its_tenant):
    recorded = accesses()
    if not any(f in FUNCTIONS.values() for f, *_ in recorded):
        pytest.skip("no DynamoDB-mode server ran in this session, so nothing was recorded")
    return recorded


def test_the_access_record_names_real_functions_and_item_types(used):
    functions = {f for f, *_ in used}
    assert functions <= set(FUNCTIONS.values()) | {"none"}, functions
    for function, action, prefix, _ in used:
        if function == "none":
            continue  # `gatehouse serve` start-up: table creation and seeding
        assert action != "TableOperation", f"{function} makes a table-level call"
        assert prefix and (prefix.endswith("#") or prefix.isupper()), (function, action, prefix)
        if ":" in action:  # the non-DynamoDB accesses: notification events, signing-key KMS calls
            assert ((action, prefix) == (PUT_EVENTS, EVENT_BUS_PREFIX)
                    or (action in KMS_ACTIONS and prefix == KMS_PREFIX)), (function, action, prefix)


def test_every_access_of_a_function_is_granted_by_its_policy(used):
    policy = grants()
    missing = sorted(
        (function, action, prefix, kind)
        for function, action, prefix, kind in used
        if function in policy
        and not any(a == action and k == kind and admits(p, prefix)
                    for a, p, k in policy[function])
    )
    assert not missing, (
        "accesses the template does not grant (function, action, key prefix, table/index/bus); on "
        "AWS each is an AccessDenied: a 503, or for events:PutEvents a notification never "
        f"delivered:\n" + "\n".join(map(str, missing)))


def test_every_grant_of_a_function_is_used_or_has_a_reason(used, request):
    why_not = whole_suite_ran(request.session)
    if why_not:
        pytest.skip(f"needs the whole black-box suite: {why_not}")
    policy = grants()
    unused = sorted(
        (function, action, pattern, kind)
        for function, granted in policy.items()
        for action, pattern, kind in granted
        if not any(f == function and a == action and k == kind and admits(pattern, prefix)
                   for f, a, prefix, k in used)
        and (function, action, pattern, kind) not in UNEXERCISED
    )
    assert not unused, (
        "grants no test exercised (function, action, LeadingKeys pattern, table/index/bus): remove "
        "them from infra/template.yaml, or list them in UNEXERCISED with the reason:\n"
        + "\n".join(map(str, unused)))


def test_every_listed_reason_names_a_real_grant():
    policy = grants()
    stale = [key for key in UNEXERCISED
             if (key[1], key[2], key[3]) not in policy.get(key[0], set())]
    assert not stale, f"UNEXERCISED lists grants the template no longer has: {stale}"
