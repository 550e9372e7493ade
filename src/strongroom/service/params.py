"""Strict readers for request JSON: every bad field is a clear `InvalidRequest`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.errors import InvalidRequest

JsonObj = Mapping[str, Any]


def obj(value: object, where: str) -> JsonObj:
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{where}` must be an object")
    return value


def req_str(o: JsonObj, key: str, where: str = "", *, max_len: int = 4096, allow_empty: bool = False) -> str:
    name = f"{where}{key}"
    if key not in o:
        raise InvalidRequest(f"missing field `{name}`")
    v = o[key]
    if not isinstance(v, str):
        raise InvalidRequest(f"`{name}` must be a string")
    if not allow_empty and not v:
        raise InvalidRequest(f"`{name}` must not be empty")
    if len(v) > max_len:
        raise InvalidRequest(f"`{name}` is longer than {max_len} characters")
    return v


def opt_str(o: JsonObj, key: str, where: str = "", *, max_len: int = 4096) -> str | None:
    if o.get(key) is None:
        return None
    return req_str(o, key, where, max_len=max_len, allow_empty=True)


def req_list(o: JsonObj, key: str, where: str = "", *, max_items: int = 1000, allow_empty: bool = True) -> list[Any]:
    name = f"{where}{key}"
    if key not in o:
        raise InvalidRequest(f"missing field `{name}`")
    v = o[key]
    if not isinstance(v, list):
        raise InvalidRequest(f"`{name}` must be a list")
    if not allow_empty and not v:
        raise InvalidRequest(f"`{name}` must not be empty")
    if len(v) > max_items:
        raise InvalidRequest(f"`{name}` has more than {max_items} items")
    return v


def str_list(o: JsonObj, key: str, where: str = "", *, max_items: int = 1000, allow_empty: bool = True) -> list[str]:
    items = req_list(o, key, where, max_items=max_items, allow_empty=allow_empty)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidRequest(f"`{where}{key}[{i}]` must be a string")
    return items


def opt_str_list(o: JsonObj, key: str, where: str = "", *, max_items: int = 100) -> list[str]:
    if o.get(key) is None:
        return []
    return str_list(o, key, where, max_items=max_items)
