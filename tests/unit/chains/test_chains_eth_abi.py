"""Contract ABIs: selectors, strict decoding into what policies read, and no crash on any calldata."""

from __future__ import annotations

import json

import pytest
from eth_abi.abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum import abi
from strongroom.errors import InvalidRequest

ERC20 = json.dumps(
    [
        {"type": "function", "name": "transfer", "stateMutability": "nonpayable",
         "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
         "outputs": [{"name": "", "type": "bool"}]},
        {"type": "function", "name": "approve", "stateMutability": "nonpayable",
         "inputs": [{"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"}],
         "outputs": [{"name": "", "type": "bool"}]},
        {"type": "event", "name": "Transfer", "anonymous": False,
         "inputs": [{"indexed": True, "name": "from", "type": "address"}]},
    ]
)  # fmt: skip
ROUTER = json.dumps(
    [
        {
            "type": "function",
            "name": "exactInputSingle",
            "inputs": [
                {
                    "name": "params",
                    "type": "tuple",
                    "components": [
                        {"name": "tokenIn", "type": "address"},
                        {"name": "tokenOut", "type": "address"},
                        {"name": "fee", "type": "uint24"},
                        {"name": "path", "type": "bytes"},
                    ],
                },
                {"name": "hops", "type": "uint8[]"},
            ],
        }
    ]
)
TO = "0x" + "Ab" * 20


def test_selectors_are_those_of_the_canonical_signatures() -> None:
    parsed = abi.parse_abi(ERC20)
    assert {f.signature: f.selector.hex() for f in parsed.functions.values()} == {
        "transfer(address,uint256)": "a9059cbb",  # the ERC-20 selectors everyone knows
        "approve(address,uint256)": "095ea7b3",
    }
    router = abi.parse_abi(ROUTER)
    (fn,) = router.functions.values()
    assert fn.signature == "exactInputSingle((address,address,uint24,bytes),uint8[])"


def test_a_call_decodes_to_named_typed_arguments() -> None:
    parsed = abi.parse_abi(ERC20)
    data = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [TO, 10**21])
    assert abi.decode_call(parsed, data) == {
        "function_name": "transfer",
        "function_signature": "transfer(address,uint256)",
        "contract_call_args": {"to": TO.lower(), "value": 10**21},
    }
    router = abi.parse_abi(ROUTER)
    (fn,) = router.functions.values()
    data = fn.selector + encode(
        ["(address,address,uint24,bytes)", "uint8[]"], [(TO, "0x" + "11" * 20, 3000, b"\x01\x02"), [1, 2]]
    )
    call = abi.decode_call(router, data)
    assert call is not None
    assert call["contract_call_args"] == {
        "params": {"tokenIn": TO.lower(), "tokenOut": "0x" + "11" * 20, "fee": 3000, "path": "0x0102"},
        "hops": [1, 2],
    }


def test_what_the_abi_does_not_describe_decodes_to_nothing() -> None:
    parsed = abi.parse_abi(ERC20)
    good = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [TO, 5])
    assert abi.decode_call(parsed, bytes.fromhex("deadbeef") + good[4:]) is None  # unknown selector
    assert abi.decode_call(parsed, good[:40]) is None  # cut short
    assert abi.decode_call(parsed, good[:4]) is None
    dirty = bytearray(good)
    dirty[4] = 1  # an address word whose padding is not zero: strict decoding refuses it
    assert abi.decode_call(parsed, bytes(dirty)) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        "[]",
        "[1]",
        '[{"type": "event", "name": "E", "inputs": []}]',
        '[{"type": "function", "inputs": []}]',
        '[{"type": "function", "name": "f", "inputs": [{"name": "x", "type": "uint257"}]}]',
        '[{"type": "function", "name": "f", "inputs": [{"name": "x", "type": "tuple"}]}]',
        '[{"type": "function", "name": "f", "inputs": "x"}]',
        '[{"type": "function", "name": "f(", "inputs": []}]',
    ],
)
def test_malformed_abis_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidRequest):
        abi.parse_abi(text)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([ERC20, ROUTER]))
def test_any_calldata_decodes_or_is_refused_without_crashing(tail: bytes, text: str) -> None:
    parsed = abi.parse_abi(text)
    for selector in parsed.functions:
        call = abi.decode_call(parsed, selector + tail)
        assert call is None or set(call) == {"function_name", "function_signature", "contract_call_args"}
