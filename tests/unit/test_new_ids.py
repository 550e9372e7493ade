"""Activity and vote ids come from a pool of random bytes: distinct, version 4, never shared with a forked child."""

from __future__ import annotations

import os
import uuid

from hypothesis import given
from hypothesis import strategies as st

from strongroom.service.pipeline import _uuid4, new_ids


def test_ids_are_distinct_version_4_uuids_across_pool_refills() -> None:
    ids = [i for _ in range(700) for i in new_ids(1)] + new_ids(300)  # several refills of 256
    assert len(set(ids)) == len(ids) == 1000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    new_ids(1)  # the pool is filled: without the at-fork reset, both would draw the same bytes next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, ",".join(new_ids(4)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        child = f.read().split(",")
    os.waitpid(pid, 0)
    parent = new_ids(4)
    assert len(child) == 4
    assert not set(child) & set(parent)


@given(st.binary(min_size=16, max_size=16))
def test_an_id_is_the_standard_library_s_version_4_uuid_of_its_bytes(raw: bytes) -> None:
    assert _uuid4(bytearray(raw)) == str(uuid.UUID(bytes=raw, version=4))
