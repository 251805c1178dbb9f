"""Seq-gap counting, and why a member of a shared group does not count.

In an MQTT 5 shared group the broker hands each member a round-robin share of the stream,
so one member sees device X's readings 0, 2, 4 ... and would count every reading its
partner took as lost (the paired-collector chaos run showed it: the counter summed to about
the stream's size with nothing lost). The collector therefore counts gaps only on a plain
subscription (MQTT 3.1.1); with a group, loss is visible in storage (bench and chaos check
(device, seq) there) and in the alerts role, which sees the whole stream.
"""

from __future__ import annotations

import orjson

from collector.ingest import Ingest
from collector.stats import CollectorStats
from kordon.model.payload import DecodeLimits

NOW = 1_790_000_000.0
TOPIC = "kordon/v1/chop/ups/ups-1/telemetry"


def _feed(track_seq: bool, seqs: list[int]) -> CollectorStats:
    stats = CollectorStats()
    ingest = Ingest(stats, DecodeLimits(), track_seq=track_seq)
    for seq in seqs:
        payload = orjson.dumps({"ts": NOW - 100 + seq, "seq": seq, "metrics": {"ups.load": 1.0}})
        assert ingest.handle(TOPIC, payload, NOW).records
    return stats


def test_a_plain_subscriber_counts_the_readings_missing_between_seqs() -> None:
    stats = _feed(True, [0, 1, 4, 5, 5, 9])
    assert sum(stats.seq_gaps.values()) == 2 + 3  # 2, 3 and 6, 7, 8; the repeat of 5 is none


def test_a_shared_group_member_does_not_count_its_partners_share_as_gaps() -> None:
    stats = _feed(False, [0, 2, 4, 6, 8])  # the share one member of two receives
    assert sum(stats.seq_gaps.values()) == 0
    assert stats.readings_accepted == 5
