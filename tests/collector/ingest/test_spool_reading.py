"""What the spool hands the drain, and what a spooled arrival confirms: read fast from a
well-formed batch, and from anything else as far as it can be read."""

import json
from datetime import UTC, datetime

from collector.arrivals import stream_positions
from collector.ingest.spool import Spool

EPOCH = "0123456789abcdef"
BATCH = "pq/v1/dd/air-1/batch"


def member(seq: object, epoch: object = EPOCH) -> dict[str, object]:
    return {"v": 1, "device": "air-1", "seq": seq, "epoch": epoch, "kind": "telemetry"}


def batch(*members: object) -> bytes:
    return json.dumps({"v": 1, "kind": "batch", "device": "air-1", "messages": members}).encode()


def test_the_spool_hands_out_at_most_max_bytes_and_at_least_one_message(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite")
    spool.put([("t", b"x" * 300), ("t", b"y" * 300), ("t", b"z" * 300)], datetime.now(UTC))
    assert [len(s.payload) for s in spool.peek(10, max_bytes=500)] == [300, 300]
    assert [s.payload[:1] for s in spool.peek(10, max_bytes=1)] == [b"x"]
    assert len(spool.peek(2)) == 2


def test_a_spooled_batch_confirms_each_message_that_names_its_place():
    positions = stream_positions(BATCH, batch(member(1), member(2), member(3)), "pq")
    assert positions == [(("dd", "air-1", EPOCH), seq) for seq in (1, 2, 3)]


def test_what_cannot_be_read_that_far_is_left_out_and_the_rest_confirmed():
    odd = batch(member(1), 7, member(True), member(2, epoch=None), member(-1), member(4))
    assert stream_positions(BATCH, odd, "pq") == [
        (("dd", "air-1", EPOCH), 1),
        (("dd", "air-1", EPOCH), 4),
    ]
    single = json.dumps(member(9)).encode()
    assert stream_positions("pq/v1/dd/air-1/telemetry", single, "pq") == [
        (("dd", "air-1", EPOCH), 9)
    ]
    for payload in (b"{not json", b"[1, 2]", b'{"messages": 3}'):
        assert stream_positions(BATCH, payload, "pq") == []
    assert stream_positions("pq/v1/dd/air-1/status", single, "pq") == []
    assert stream_positions("not/a/topic", single, "pq") == []
