"""DynamoDB item size from an item's wire JSON (`{"name": {"S": ...}}`), by the documented rules
(Developer Guide, "Item sizes and formats"): attribute-name bytes plus value bytes. A string is
its UTF-8 length, a number about one byte per two significant digits plus one, binary its raw
length, a boolean or null one byte, a list or map three bytes plus one per element plus the
elements (map keys count).

DynamoDB Local and moto do not report consumed capacity faithfully, so the size, and from it the
request units, is computed here from what the table holds.
"""

from __future__ import annotations

import base64
import math


def number_size(text: str) -> int:
    # Leading and trailing zeros are not significant: a timestamp ending in 0 is a byte
    # smaller, which is why counters' sizes move by a byte between runs.
    digits = text.lstrip("+-").replace(".", "")
    mantissa = digits.split("e")[0].split("E")[0]
    significant = mantissa.lstrip("0").rstrip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def _binary_size(value) -> int:
    # boto3 hands bytes; the raw wire JSON (what the proxy records) carries base64.
    return len(base64.b64decode(value)) if isinstance(value, str) else len(value)


def value_size(value: dict) -> int:
    (kind, x), = value.items()
    if kind == "S":
        return len(x.encode("utf-8"))
    if kind == "N":
        return number_size(x)
    if kind == "B":
        return _binary_size(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in x)
    if kind == "NS":
        return sum(number_size(s) for s in x)
    if kind == "BS":
        return sum(_binary_size(b) for b in x)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(e) for k, e in x.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict) -> int:
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def key_prefix(pk: str) -> str:
    """The item type: a partition key's part before the first `#` (`CLIENT#demo#id` → CLIENT)."""
    return pk.split("#")[0]
