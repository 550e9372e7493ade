"""The in-memory idempotency window: capped, and never answers "not seen" for one it dropped."""

from __future__ import annotations

from strongroom.service.pipeline import RecentFingerprints

WINDOW = 1_000


def test_a_dropped_fingerprint_makes_every_unknown_one_a_maybe_until_it_leaves_the_window() -> None:
    recent = RecentFingerprints(WINDOW, capacity=3)
    for i in range(3):
        recent.add(f"f{i}", 100 + i)
    assert recent.maybe_seen("f0") and not recent.maybe_seen("never")
    recent.add("f3", 103)  # over capacity: f0 (at 100) is dropped
    assert len(recent) == 3 and "f0" not in recent
    assert recent.maybe_seen("f0") and recent.maybe_seen("never")  # the database is asked
    recent.prune(100 + WINDOW)  # f0 could still come back
    assert recent.maybe_seen("never")
    recent.prune(101 + WINDOW)  # f0 has left the window (and f1 with it)
    assert not recent.maybe_seen("never") and not recent.maybe_seen("f0")
    assert recent.maybe_seen("f3")


def test_a_reload_that_left_older_ones_in_the_database_asks_it_for_a_window() -> None:
    recent = RecentFingerprints(WINDOW, capacity=2)
    recent.reload([("f2", 102), ("f1", 101)], now_ms=200)  # everything fits
    assert not recent.maybe_seen("never") and recent.maybe_seen("f1")
    recent = RecentFingerprints(WINDOW, capacity=2)
    recent.reload([("f3", 103), ("f2", 102), ("f1", 101)], now_ms=200)  # one more than room: f1 left out
    assert "f1" not in recent and "f3" in recent
    assert recent.maybe_seen("f1") and recent.maybe_seen("never")
    recent.prune(200 + WINDOW + 1)
    assert not recent.maybe_seen("never")
