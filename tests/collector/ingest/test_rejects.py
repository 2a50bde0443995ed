"""Invalid messages are counted and logged by the box that sent them, within bounds: a line
when a sender's reason first shows, then at most one a minute, and a flood of made-up
topics can neither flood the log nor grow the counters without end."""

import logging

from collector.ingest.committer import OTHER_SENDERS, RejectLog
from collector.ingest.session import MAX_INVALID_SENDERS, IngestStats


def test_a_senders_invalid_messages_are_logged_at_once_then_once_a_minute_with_the_count(
    caplog,
):
    now = 0.0
    rejects = RejectLog(every_s=60, clock=lambda: now)
    with caplog.at_level(logging.WARNING, logger="collector.ingest.committer"):
        for now in (0.0, 1.0, 2.0, 30.0, 61.0, 62.0):
            rejects.dropped("ww-at-01", "bad_json", f"at {now:g}")
        rejects.dropped("ww-at-02", "bad_json", "at 62")
        rejects.dropped("ww-at-01", "invalid_value", "at 62")
    assert [r.getMessage() for r in caplog.records] == [
        "dropped invalid message from ww-at-01 (bad_json): at 0",
        "dropped 4 invalid message(s) from ww-at-01 (bad_json) in the last 61 s, the latest: at 61",
        "dropped invalid message from ww-at-02 (bad_json): at 62",
        "dropped invalid message from ww-at-01 (invalid_value): at 62",
    ]


def test_senders_past_the_bound_are_logged_together_until_others_have_nothing_left(caplog):
    now = 0.0
    rejects = RejectLog(every_s=60, max_senders=2, clock=lambda: now)
    with caplog.at_level(logging.WARNING, logger="collector.ingest.committer"):
        for topic in ("pq/v1/a/x", "pq/v1/b/x", "pq/v1/c/x", "pq/v1/d/x"):
            rejects.dropped(topic, "bad_topic", "made up")
        now = 61.0
        rejects.dropped("pq/v1/e/x", "bad_topic", "made up")
    assert [r.getMessage() for r in caplog.records] == [
        "dropped invalid message from pq/v1/a/x (bad_topic): made up",
        "dropped invalid message from pq/v1/b/x (bad_topic): made up",
        f"dropped invalid message from {OTHER_SENDERS} (bad_topic): made up",
        # A minute on, the first two have nothing left to report and make room.
        "dropped invalid message from pq/v1/e/x (bad_topic): made up",
    ]


def test_the_counters_by_sender_stop_growing_at_their_bound():
    stats = IngestStats()
    for n in range(MAX_INVALID_SENDERS + 50):
        stats.dropped(f"pq/v1/made-up/{n}", "bad_topic", 1)
    stats.dropped("ww-at-01", "bad_json", 2)
    senders = {sender for sender, _ in stats.invalid_from}
    assert len(senders) == MAX_INVALID_SENDERS + 1
    assert stats.invalid_from[OTHER_SENDERS, "bad_topic"] == 50
    assert stats.invalid_from[OTHER_SENDERS, "bad_json"] == 2
    assert stats.invalid == {"bad_topic": MAX_INVALID_SENDERS + 50, "bad_json": 2}
