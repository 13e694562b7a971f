"""Monthly cost of Gatehouse per MCP connection, at 1,000 / 100,000 / 10,000,000 connections a
month, from the measured units per request (units.py), item sizes and log volume (walk.py).

What is measured: DynamoDB calls, request units and item sizes per request, the application's
log bytes per request. What is assumed, and named below so it can be argued with: list prices,
the usage pattern of a connection, Lambda billed duration, Lambda's own log lines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

# List prices, us-east-1, arm64, December 2026, no free tiers.
P_RRU, P_WRU = 0.125e-6, 0.625e-6          # DynamoDB on demand, per request unit
P_STORAGE = 0.25                           # DynamoDB, per GB-month
P_API_1, P_API_2 = 1.00e-6, 0.90e-6        # HTTP API per request: first 300 M, then
API_TIER = 300e6
P_LAMBDA_REQ, P_GB_S = 0.20e-6, 0.0000133334
P_LOG = 0.50                               # CloudWatch Logs ingestion, per GB

SCALES = (1_000, 100_000, 10_000_000)

# Function memory per request (infra/template.yaml): discovery and the MCP demo 128 MB, the
# rest 256 MB. Keys are the walk's step names.
MEMORY_MB = {
    "MCP probe, no token (401)": 128,
    "protected resource metadata": 128,
    "metadata (tenant cached)": 128,
    "register": 256,
    "authorize GET, signed out": 256,
    "sign-in POST (approval page)": 256,
    "approve POST (code)": 256,
    "token: authorization_code": 256,
    "MCP call": 128,
    "token: refresh_token": 256,
    "introspect": 256,
    "authorize GET, signed in, approved, consented": 256,
    "revoke": 256,
}

# A first connection: an administrator connects an MCP client and approves it on the spot.
FIRST = ["MCP probe, no token (401)", "protected resource metadata", "metadata (tenant cached)",
         "register", "authorize GET, signed out", "sign-in POST (approval page)",
         "approve POST (code)", "token: authorization_code", "MCP call"]
HOURS = 8 * 22                  # working hours a month
REFRESHES = HOURS               # 1-hour access tokens: one refresh per working hour
MCP_PER_HOUR = 10
MCP_CALLS = HOURS * MCP_PER_HOUR - 1   # the first one is part of FIRST

# Per-item storage overhead DynamoDB adds to every item and index entry.
ITEM_OVERHEAD = 100


@dataclass(frozen=True)
class Assumptions:
    # Lambda billed duration: our code (README: 0.65 ms warm metadata) plus a DynamoDB round
    # trip each (7 ms warm registration against moto on loopback; real latency not measured),
    # plus argon2id on sign-in: 13 ms on a full x86 core, ≈ 90 ms on a 256 MB function's share
    # of a vCPU; 300 ms is the cautious figure.
    ms_code: float = 1
    ms_per_call: float = 5
    ms_argon2: float = 300
    # CloudWatch: Lambda's START/END/REPORT lines (estimate) and the per-event overhead.
    platform_log_bytes: int = 250
    log_event_overhead: int = 26
    # Whether a ConditionCheck inside a transaction is billed as a strongly consistent read
    # (1 RRU) instead of a transactional write (2 WRU).
    condition_check_as_read: bool = False


def request_cost(name: str, steps: dict, logs: dict, a: Assumptions) -> dict:
    """Units, Lambda GB-seconds and log bytes of one request of step `name`."""
    s = steps.get(name, {"calls": 0, "rru": 0.0, "wru": 0.0, "gsi_wru": 0.0,
                         "condition_checks": 0})
    rru, wru = s["rru"], s["wru"] + s["gsi_wru"]
    if a.condition_check_as_read:
        rru += s["condition_checks"]
        wru -= 2 * s["condition_checks"]
    ms = a.ms_code + a.ms_per_call * s["calls"]
    if name.startswith("sign-in"):
        ms += a.ms_argon2
    mem = MEMORY_MB[name]
    log = logs[name]
    # START, END and REPORT are three more events.
    log_bytes = log["bytes"] + a.platform_log_bytes + a.log_event_overhead * (log["events"] + 3)
    return {"calls": s["calls"], "rru": rru, "wru": wru, "ms": ms, "mem": mem,
            "gbs": mem / 1024 * ms / 1000, "log": log_bytes}


def bundle(counts: list[tuple[str, int]], steps: dict, logs: dict, a: Assumptions) -> dict:
    out = {"requests": 0, "calls": 0, "rru": 0.0, "wru": 0.0, "gbs": 0.0, "log": 0}
    for name, n in counts:
        r = request_cost(name, steps, logs, a)
        out["requests"] += n
        for key in ("calls", "rru", "wru", "gbs", "log"):
            out[key] += n * r[key]
    return out


def added(x: dict, y: dict) -> dict:
    return {k: x[k] + y[k] for k in x}


def written_size(calls: list[dict], step: str, prefix: str, kind: str) -> int:
    """Size of a `prefix` item as the `kind` part of a call in `step` left it."""
    sizes = [p["after"] for c in calls if c["label"] == step for p in c["parts"]
             if p["kind"] == kind and p["pk"].startswith(prefix + "#")]
    assert sizes, f"no {kind} of a {prefix} item in step {step!r}"
    return max(sizes)


def storage_bytes(calls: list[dict]) -> int:
    """Bytes an active connection keeps in the table: its approved client, approval, consent
    and grant (client and grant also in gsi1), and every rotated refresh token, which stays
    until its grant expires (30 days)."""
    client = written_size(calls, "approve POST (code)", "CLIENT", "Update")
    approval = written_size(calls, "approve POST (code)", "APPROVAL", "Put")
    consent = written_size(calls, "approve POST (code)", "CONSENT", "Put")
    grant = written_size(calls, "token: authorization_code", "GRANT", "Put")
    rotated = written_size(calls, "token: refresh_token", "REFRESH", "Update")
    fixed = 2 * client + approval + consent + 2 * grant + 6 * ITEM_OVERHEAD
    return fixed + (REFRESHES + 1) * (rotated + ITEM_OVERHEAD)


def connection(steps: dict, logs: dict, a: Assumptions) -> dict:
    first = bundle([(n, 1) for n in FIRST], steps, logs, a)
    refreshes = [("token: refresh_token", REFRESHES)]
    use = bundle(refreshes + [("MCP call", MCP_CALLS)], steps, logs, a)
    use_no_mcp = bundle(refreshes, steps, logs, a)
    return {"first": first, "use": use, "conn": added(first, use),
            "conn_no_mcp": added(first, use_no_mcp)}


def monthly(c: dict, n: int, storage: int) -> dict:
    """Monthly bill for `n` connections of per-connection figures `c`."""
    ddb = n * (c["rru"] * P_RRU + c["wru"] * P_WRU)
    sto = n * storage / 1e9 * P_STORAGE
    reqs = n * c["requests"]
    api = min(reqs, API_TIER) * P_API_1 + max(0, reqs - API_TIER) * P_API_2
    lam = reqs * P_LAMBDA_REQ + n * c["gbs"] * P_GB_S
    logs = n * c["log"] / 1e9 * P_LOG
    return {"n": n, "reqs": reqs, "rru": n * c["rru"], "wru": n * c["wru"], "ddb": ddb,
            "storage": sto, "lambda": lam, "api": api, "logs": logs,
            "total": ddb + sto + lam + api + logs}


def rates(c: dict, n: int) -> dict:
    """Average request and unit rates over the working hours (real peaks are higher)."""
    secs = HOURS * 3600
    return {"n": n, "register": n / secs, "refresh": n * REFRESHES / secs,
            "mcp": n * MCP_CALLS / secs, "rru": n * c["rru"] / secs, "wru": n * c["wru"] / secs}


def model(steps: dict, logs: dict, calls: list[dict]) -> dict:
    a = Assumptions()
    per = connection(steps, logs, a)
    storage = storage_bytes(calls)
    big = SCALES[-1]
    cc_read = connection(steps, logs, replace(a, condition_check_as_read=True))["conn"]
    slow = connection(steps, logs, replace(a, ms_per_call=2 * a.ms_per_call))["conn"]
    base = monthly(per["conn"], big, storage)
    return {
        **per, "storage_b": storage,
        "requests": {n: request_cost(n, steps, logs, a) for n in MEMORY_MB},
        "cost": [monthly(per["conn"], n, storage) for n in SCALES],
        "cost_no_mcp": [monthly(per["conn_no_mcp"], n, storage) for n in SCALES],
        "rates": [rates(per["conn"], n) for n in SCALES],
        "sensitivity": {
            "condition_check_as_read_wru_only": monthly(
                {**per["conn"], "wru": cc_read["wru"]}, big, storage)["ddb"] - base["ddb"],
            "condition_check_as_read": monthly(cc_read, big, storage)["ddb"] - base["ddb"],
            "double_latency_lambda": monthly(slow, big, storage)["lambda"] - base["lambda"],
        },
    }


# --------------------------------------------------------------------------------------------
# Printing, rounded as the README section rounds
# --------------------------------------------------------------------------------------------


def sig(x: float, digits: int = 3) -> str:
    """`digits` significant figures, halves rounded up (as by hand, not to even)."""
    if x == 0:
        return "0"
    d = Decimal(repr(x))
    exp = d.adjusted() - digits + 1
    rounded = d.quantize(Decimal(1).scaleb(exp), rounding=ROUND_HALF_UP)
    return f"{rounded:,f}" if exp < 0 else f"{int(rounded):,}"


def si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{sig(x / scale)} {unit}"
    return sig(x)


def money(x: float, whole: bool) -> str:
    return f"${x:,.0f}" if whole else f"${x:,.2f}"


def size(b: float) -> str:
    return f"{sig(b / 1e6, 2)} MB" if b >= 1e6 else f"{b / 1e3:.0f} KB"


def format_requests(m: dict) -> str:
    rows = [f"{'request':<48} {'MB':>4} {'calls':>5} {'RRU':>4} {'WRU':>4} {'ms':>4} {'log B':>6}"]
    for name, r in m["requests"].items():
        rows.append(f"{name:<48} {r['mem']:>4} {r['calls']:>5} {r['rru']:>4g} {r['wru']:>4g} "
                    f"{r['ms']:>4g} {r['log']:>6}")
    return "\n".join(rows)


def format_connection(m: dict) -> str:
    rows = ["| per connection | requests | DynamoDB calls | RRU | WRU | Lambda GB-s | logs "
            "| stored |", "|---|---|---|---|---|---|---|---|"]
    for label, key in (("first connection", "first"), ("one month of use", "use"),
                       ("**total**", "conn"), ("total without demo MCP calls", "conn_no_mcp")):
        c = m[key]
        stored = f"{m['storage_b'] / 1e3:.0f} KB" if key.startswith("conn") else ""
        rows.append(f"| {label} | {c['requests']:,} | {c['calls']:,.0f} | {c['rru']:,.0f} | "
                    f"{c['wru']:,.0f} | {sig(c['gbs'], 3 if c['gbs'] >= 1 else 2)} | "
                    f"{size(c['log'])} | {stored} |")
    return "\n".join(rows)


def format_cost(rows: list[dict], title: str) -> str:
    out = [f"{title}:",
           "| MCP connections / month | requests | RRU | WRU | DynamoDB (requests + storage) "
           "| Lambda | API Gateway | CloudWatch Logs | total |",
           "|---|---|---|---|---|---|---|---|---|"]
    for x in rows:
        whole = x["total"] >= 10_000  # cents stop mattering in the largest row
        total = money(x["total"], x["total"] >= 10)
        out.append(f"| {x['n']:,} | {si(x['reqs'])} | {si(x['rru'])} | {si(x['wru'])} | "
                   f"{money(x['ddb'], whole)} + {money(x['storage'], whole)} | "
                   f"{money(x['lambda'], whole)} | {money(x['api'], whole)} | "
                   f"{money(x['logs'], whole)} | **{total}** |")
    per = rows[0]["total"] / rows[0]["n"]
    out.append(f"≈ ${per:.4f} per connection per month")
    return "\n".join(out)


def rate(x: float) -> str:
    return f"{x:,.0f}/s" if x >= 100 else f"{sig(x)}/s"


def format_rates(m: dict) -> str:
    out = ["| scale | registration | token (refresh) | demo MCP | table RRU/s, WRU/s |",
           "|---|---|---|---|---|"]
    for r in m["rates"]:
        out.append(f"| {r['n']:,} | {rate(r['register'])} | {rate(r['refresh'])} | "
                   f"{rate(r['mcp'])} | {r['rru']:,.0f}, {r['wru']:,.0f} |")
    return "\n".join(out)


def delta(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}${abs(x):,.0f}"


def format_model(m: dict) -> str:
    s = m["sensitivity"]
    big = f"{SCALES[-1]:,}"
    conn = m["conn"]
    refresh_wru = m["requests"]["token: refresh_token"]["wru"]
    return "\n\n".join([
        format_requests(m), format_connection(m),
        format_cost(m["cost"], "monthly cost"),
        format_cost(m["cost_no_mcp"], "monthly cost without the demo MCP calls"),
        format_rates(m),
        "\n".join([
            f"storage per active connection: {m['storage_b'] / 1e3:.1f} KB",
            f"refresh WRU per month: {REFRESHES * refresh_wru:,.0f} of {conn['wru']:,.0f}",
            f"ConditionCheck billed as a read, at {big}: DynamoDB "
            f"{delta(s['condition_check_as_read'])} "
            f"({delta(s['condition_check_as_read_wru_only'])} counting only the WRU saved)",
            f"doubled per-call latency, at {big}: Lambda {delta(s['double_latency_lambda'])}",
        ]),
    ])
