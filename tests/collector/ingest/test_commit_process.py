"""The commit process begins a batch while the store's server still writes the one before
it: every batch handed over at once is answered, each message counted once."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import timedelta
from types import SimpleNamespace

import pytest

from collector.arrivals import Arrival
from collector.config import load_collector
from collector.ingest.commit_process import CommitProcess, CommitProcessError
from collector.ingest.committer import Committer
from collector.query import ReadingQuery
from collector.stores import open_store
from collector.stores.sqlite import SqliteStore
from iotwire.batches import batch_payload
from iotwire.codec import encode
from iotwire.messages import Telemetry
from iotwire.topics import Channel, topic_for
from testbed.collector_setup import collector_config
from tests.collector.stores.store_cases import T0, message

EPOCH = "0123456789abcdef"


def arrivals(seqs: range) -> list[Arrival]:
    topic = topic_for("pq", "dd", "air-1", Channel.TELEMETRY)
    return [(topic, encode(message("air-1", s, s, pm10=float(s))), False) for s in seqs]


def test_batches_handed_over_at_once_are_each_committed_once(tmp_path, mosquitto, influxd):
    store = {"kind": "influxdb", "url": influxd.url, "api": "v1", "database": "overlap"}
    config = collector_config(tmp_path, mosquitto, "collector-overlap", store=store)
    process = CommitProcess(config)
    # Each batch repeats the last message of the one before, as a redelivery would.
    batches = [arrivals(range(1 + 40 * n, 42 + 40 * n)) for n in range(6)]
    received = [T0 + timedelta(seconds=n) for n in range(6)]
    try:
        with ThreadPoolExecutor(max_workers=process.depth) as handing:
            results = list(handing.map(process.commit, batches, received))
    finally:
        process.close()
    assert [r.unavailable for r in results] == [None] * 6
    assert sum(r.stored for r in results) == 241
    assert sum(r.duplicates for r in results) == 5
    with closing(open_store(load_collector(config))) as store:
        [device] = store.devices()
    assert (device.messages, device.duplicates, device.gaps) == (241, 5, 0)


@pytest.mark.servers  # starts the commit process
def test_a_commit_process_that_cannot_open_its_store_says_why(tmp_path):
    (tmp_path / "a-file").write_text("")
    store = {"kind": "sqlite", "path": str(tmp_path / "a-file" / "store.sqlite")}
    broker = SimpleNamespace(host="127.0.0.1", port=1883)  # never reached
    config = collector_config(tmp_path, broker, "collector-no-store", store=store)
    with pytest.raises(CommitProcessError, match="the commit process failed: ") as caught:
        CommitProcess(config)
    assert "Not a directory" in str(caught.value)
    assert "a-file" in str(caught.value)


def test_a_batch_of_a_backlog_is_committed_at_once_and_each_message_counted_exactly(tmp_path):
    """A batch payload's messages go into the SQLite store together; a repeat inside the
    batch or from before it, and a sample sent again under a new number, are still
    counted message by message."""
    store = SqliteStore(tmp_path / "s.sqlite")
    committer = Committer(store, "pq")
    topic = topic_for("pq", "dd", "air-1", Channel.BATCH)

    def batch(*messages: Telemetry) -> Arrival:
        return (topic, batch_payload("air-1", [encode(m) for m in messages]), False)

    def sample(seq: int, minute: int) -> Telemetry:
        return message("air-1", seq, minute, epoch=EPOCH, pm10=float(seq))

    first = committer.commit([batch(*(sample(s, s) for s in range(1, 201)))], T0)
    assert (first.stored, first.duplicates) == (200, 0)
    assert first.committed == {("dd", "air-1", EPOCH): list(range(1, 201))}
    # 150 again, 201 twice, and 202 a sample 201 already holds: one row less.
    again = committer.commit([batch(sample(150, 150), sample(201, 201), sample(201, 201))], T0)
    assert (again.stored, again.duplicates) == (1, 2)
    resent = committer.commit([batch(sample(203, 203), sample(202, 201))], T0)
    assert (resent.stored, resent.duplicates) == (2, 0)
    rows = store.query(ReadingQuery(limit=1000))
    assert len(rows) == 202
    assert [d.messages for d in store.devices()] == [203]
    store.close()
