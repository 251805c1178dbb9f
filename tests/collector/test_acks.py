"""AckTracker: a PUBACK goes out once, when the last obligation of a message is done, and
never for a packet id of a session the broker has forgotten."""

from __future__ import annotations

import threading

import pytest

from collector.acks import AckTracker


@pytest.fixture
def sent() -> list[tuple[int, int]]:
    return []


@pytest.fixture
def tracker(sent: list[tuple[int, int]]) -> AckTracker:
    return AckTracker(lambda mid, qos: sent.append((mid, qos)))


def test_qos0_needs_no_acknowledgement(tracker: AckTracker, sent: list) -> None:
    assert tracker.hold(1, qos=0, parts=2) is None
    assert tracker.pending() == 0 and sent == []


def test_single_obligation(tracker: AckTracker, sent: list) -> None:
    token = tracker.hold(7, qos=1, parts=1)
    assert token is not None and sent == [] and tracker.pending() == 1
    tracker.release([token])
    assert sent == [(7, 1)] and tracker.pending() == 0


def test_ack_waits_for_every_part(tracker: AckTracker, sent: list) -> None:
    # e.g. spool records for the good readings of a batch and a dead letter for the bad one
    token = tracker.hold(3, qos=1, parts=2)
    assert token is not None
    tracker.release([token])
    assert sent == []
    tracker.release([token])
    assert sent == [(3, 1)]


def test_nothing_owed_acks_at_once(tracker: AckTracker, sent: list) -> None:
    assert tracker.hold(4, qos=1, parts=0) is not None
    assert sent == [(4, 1)] and tracker.pending() == 0


def test_qos2_is_acknowledged_with_its_qos(tracker: AckTracker, sent: list) -> None:
    token = tracker.hold(9, qos=2, parts=1)
    assert token is not None
    tracker.release([token])
    assert sent == [(9, 2)]


def test_release_of_an_unknown_or_settled_token_is_ignored(tracker: AckTracker, sent: list) -> None:
    token = tracker.hold(5, qos=1, parts=1)
    assert token is not None
    tracker.release([token])
    tracker.release([token])  # a late duplicate
    tracker.release([(0, 999, 1)])
    assert sent == [(5, 1)]


def test_messages_are_independent(tracker: AckTracker, sent: list) -> None:
    a = tracker.hold(1, qos=1, parts=1)
    b = tracker.hold(2, qos=1, parts=2)
    c = tracker.hold(3, qos=1, parts=1)
    assert a and b and c
    tracker.release([c, b])
    assert sent == [(3, 1)]
    tracker.release([b, a])
    assert sorted(sent) == [(1, 1), (2, 1), (3, 1)]
    assert tracker.pending() == 0


def test_redelivery_in_the_same_session_adds_obligations(tracker: AckTracker, sent: list) -> None:
    """The broker resends an unacknowledged id after a reconnect with the session kept: one
    PUBACK settles both copies, and only once both are durable."""
    first = tracker.hold(11, qos=1, parts=1)
    again = tracker.hold(11, qos=1, parts=2)  # the redelivered copy owes two things
    assert first == again
    assert tracker.pending() == 1
    tracker.release([first])
    tracker.release([again])
    assert sent == []
    tracker.release([again])
    assert sent == [(11, 1)]


def test_new_session_never_acks_a_stale_packet_id(tracker: AckTracker, sent: list) -> None:
    stale = tracker.hold(42, qos=1, parts=1)
    assert stale is not None
    tracker.new_session()  # the broker lost the session: packet ids start over
    assert tracker.pending() == 0
    fresh = tracker.hold(42, qos=1, parts=1)  # a different message with the same id
    assert fresh is not None and fresh != stale
    tracker.release([stale])  # the old work finishes late
    assert sent == []  # ...and must not acknowledge the new message
    tracker.release([fresh])
    assert sent == [(42, 1)]


def test_stale_multi_part_work_is_dropped_whole(tracker: AckTracker, sent: list) -> None:
    stale = tracker.hold(8, qos=1, parts=3)
    assert stale is not None
    tracker.release([stale])
    tracker.new_session()
    tracker.release([stale, stale])
    assert sent == [] and tracker.pending() == 0


def test_several_session_changes(tracker: AckTracker, sent: list) -> None:
    tokens = []
    for _ in range(3):
        token = tracker.hold(1, qos=1, parts=1)
        assert token is not None
        tokens.append(token)
        tracker.new_session()
    last = tracker.hold(1, qos=1, parts=1)
    assert last is not None
    tracker.release(tokens)
    assert sent == []
    tracker.release([last])
    assert sent == [(1, 1)]


def test_concurrent_release_acks_each_message_exactly_once(sent: list) -> None:
    lock = threading.Lock()

    def send(mid: int, qos: int) -> None:
        with lock:
            sent.append((mid, qos))

    tracker = AckTracker(send)
    tokens = [tracker.hold(mid, qos=1, parts=4) for mid in range(1, 501)]
    work = [token for token in tokens for _ in range(4)]

    def worker(share: list) -> None:
        for token in share:
            tracker.release([token])

    threads = [threading.Thread(target=worker, args=(work[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sent) == [(mid, 1) for mid in range(1, 501)]
    assert tracker.pending() == 0
