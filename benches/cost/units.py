"""Read and write request units per request, from the DynamoDB calls the walk recorded.

On-demand billing rules (DynamoDB Developer Guide, "Read/write capacity mode" and "Amazon
DynamoDB Transactions"):
- GetItem: 1 RRU per 4 KB strongly consistent, half that eventually consistent; a missing item
  costs the minimum. BatchGetItem: each key as a GetItem. Query: the returned items' total size,
  rounded up to 4 KB.
- PutItem / UpdateItem: 1 WRU per KB of the larger of the item before and after; DeleteItem: of
  the item deleted. A failed condition costs the same.
- TransactWriteItems: 2 WRU per KB for every item in it, a ConditionCheck included (counted
  like a write here; the cost model shows what billing it as a read would change).
- Index gsi1 (projection ALL): a write that creates, changes or deletes an item carrying gsi1pk
  also writes the index entry, 1 WRU per KB (a plain write, also inside a transaction).
"""

from __future__ import annotations

import math
from collections import Counter

from itemsize import item_size, key_prefix

KB = 1024


def wru(size: int, factor: int = 1) -> int:
    return factor * max(1, math.ceil(size / KB))


def rru(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / (4 * KB)))
    return units if consistent else units / 2


def read_units(op: str, req: dict, resp: dict) -> tuple[float, list[str]]:
    if op == "GetItem":
        size = item_size(resp["Item"]) if resp.get("Item") else 0
        consistent = req.get("ConsistentRead", False)
        units = rru(size, consistent)
        mode = "CR" if consistent else "EC"
        return units, [f"Get {key_prefix(req['Key']['pk']['S'])} {size}B {mode} {units:g}"]
    if op == "BatchGetItem":
        total, detail = 0.0, []
        for table, spec in req["RequestItems"].items():
            found = {(i["pk"]["S"], i["sk"]["S"]): item_size(i)
                     for i in resp.get("Responses", {}).get(table, [])}
            for key in spec["Keys"]:
                size = found.get((key["pk"]["S"], key["sk"]["S"]), 0)
                units = rru(size, spec.get("ConsistentRead", False))
                total += units
                detail.append(f"Batch {key_prefix(key['pk']['S'])} {size}B {units:g}")
        return total, detail
    if op == "Query":
        size = sum(item_size(i) for i in resp.get("Items", []))
        units = rru(size, req.get("ConsistentRead", False))
        return units, [f"Query {size}B {units:g}"]
    return 0.0, []


def write_units(op: str, parts: list[dict]) -> tuple[int, int, list[str]]:
    """(table WRU, index WRU, detail) of a write call's parts."""
    factor = 2 if op == "TransactWriteItems" else 1
    table = index = 0
    detail = []
    for p in parts:
        if p["kind"] in ("Delete", "ConditionCheck"):
            size = p["before"]
        else:
            size = max(p["before"], p["after"])
        units = wru(size, factor)
        table += units
        extra = 0
        touches_index = p["gsi_before"] or p["gsi_after"]
        if p["kind"] != "ConditionCheck" and p["changed"] and touches_index:
            extra = wru(p["after"] or p["before"])
            index += extra
        detail.append(f"{p['kind']} {key_prefix(p['pk'])} {size}B {units}"
                      + (f" +GSI {extra}" if extra else ""))
    return table, index, detail


def per_step(calls: list[dict], uncounted=("startup", "warm-up", "done")) -> dict:
    """Units per walked step, in walk order: calls, rru, wru (table), gsi_wru, condition_checks
    and one detail line per call."""
    steps: dict[str, dict] = {}
    for call in calls:
        if call["label"] in uncounted:
            continue
        reads, read_detail = read_units(call["op"], call["request"], call["response"])
        table, index, write_detail = write_units(call["op"], call["parts"])
        step = steps.setdefault(call["label"], {
            "calls": 0, "rru": 0.0, "wru": 0.0, "gsi_wru": 0.0, "condition_checks": 0,
            "detail": []})
        step["calls"] += 1
        step["rru"] += reads
        step["wru"] += table
        step["gsi_wru"] += index
        step["condition_checks"] += sum(p["kind"] == "ConditionCheck" for p in call["parts"])
        step["detail"].append(f"{call['op']}: " + "; ".join(read_detail + write_detail))
    return steps


def item_sizes(calls: list[dict], items: list[dict]) -> dict[str, list[int]]:
    """Every size each item type had during the walk (written parts and the final table),
    largest first. Items deleted during the walk (authorization requests) are only in the
    calls."""
    sizes: dict[str, Counter] = {}
    for call in calls:
        for p in call["parts"]:
            for size in (p["before"], p["after"]):
                if size:
                    sizes.setdefault(key_prefix(p["pk"]), Counter())[size] += 1
    for item in items:
        sizes.setdefault(key_prefix(item["pk"]), Counter())[item["size"]] += 1
    return {prefix: sorted(c, reverse=True)
            for prefix, c in sorted(sizes.items(), key=lambda kv: -max(kv[1]))}


def format_steps(steps: dict) -> str:
    rows = [f"{'request':<48} {'calls':>5} {'RRU':>5} {'WRU':>4} {'(GSI)':>5}"]
    for name, s in steps.items():
        rows.append(f"{name:<48} {s['calls']:>5} {s['rru']:>5g} "
                    f"{s['wru'] + s['gsi_wru']:>4g} {s['gsi_wru']:>5g}")
        rows += [f"      {line}" for line in s["detail"]]
    return "\n".join(rows)


def format_sizes(sizes: dict[str, list[int]]) -> str:
    rows = ["item sizes (bytes, every size seen; DynamoDB counts 1 KB per WRU, 4 KB per RRU):"]
    rows += [f"  {prefix:<10} {', '.join(map(str, s))}" for prefix, s in sizes.items()]
    largest = max(max(s) for s in sizes.values())
    rows.append(f"  largest item {largest} B: {KB - largest} B of room under 1 KB")
    return "\n".join(rows)
