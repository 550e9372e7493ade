"""Strict readers for request JSON: every bad field is a clear `InvalidRequest`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from strongroom.errors import InvalidRequest

JsonObj = Mapping[str, Any]
T = TypeVar("T")


def obj(value: object, where: str) -> JsonObj:
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{where}` must be an object")
    return value


def _required(o: JsonObj, key: str, where: str, kind: type[T], noun: str, allow_empty: bool) -> T:
    """`o[key]`, present, of `kind` (`noun` in the error), and not empty unless `allow_empty`."""
    name = f"{where}{key}"
    if key not in o:
        raise InvalidRequest(f"missing field `{name}`")
    v = o[key]
    if not isinstance(v, kind):
        raise InvalidRequest(f"`{name}` must be {noun}")
    if not allow_empty and not v:
        raise InvalidRequest(f"`{name}` must not be empty")
    return v


def req_str(o: JsonObj, key: str, where: str = "", *, max_len: int = 4096, allow_empty: bool = False) -> str:
    v = _required(o, key, where, str, "a string", allow_empty)
    if len(v) > max_len:
        raise InvalidRequest(f"`{where}{key}` is longer than {max_len} characters")
    return v


def opt_str(o: JsonObj, key: str, where: str = "", *, max_len: int = 4096) -> str | None:
    if o.get(key) is None:
        return None
    return req_str(o, key, where, max_len=max_len, allow_empty=True)


def req_list(o: JsonObj, key: str, where: str = "", *, max_items: int = 1000, allow_empty: bool = True) -> list[Any]:
    v: list[Any] = _required(o, key, where, list, "a list", allow_empty)
    if len(v) > max_items:
        raise InvalidRequest(f"`{where}{key}` has more than {max_items} items")
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
