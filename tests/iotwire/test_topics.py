import pytest

from iotwire.topics import Channel, TopicError, parse_topic, subscription, topic_for


def test_topics_round_trip_through_the_parser():
    for channel in Channel:
        name = "read_sensor" if channel is Channel.CMD else None
        text = topic_for("pq", "duong-dong", "air-dd-01", channel, name)
        parsed = parse_topic(text, "pq")
        assert (parsed.site, parsed.device, parsed.channel, parsed.name) == (
            "duong-dong",
            "air-dd-01",
            channel,
            name,
        )
        assert str(parsed) == text


def test_layout_is_the_documented_one():
    assert topic_for("pq", "an-thoi", "cam-at-03", Channel.PLATE) == "pq/v1/an-thoi/cam-at-03/plate"
    assert subscription("pq", Channel.TELEMETRY) == "pq/v1/+/+/telemetry"
    assert subscription("pq", Channel.CMD) == "pq/v1/+/+/cmd/+"
    assert subscription("pq", Channel.HEALTH, share_group="ops") == "$share/ops/pq/v1/+/+/health"


@pytest.mark.parametrize(
    "topic",
    [
        "pq/v1/site/dev",  # too short
        "xx/v1/site/dev/telemetry",  # other prefix
        "pq/v2/site/dev/telemetry",  # other wire level
        "pq/v1/site/dev/unknown",  # unknown channel
        "pq/v1/Site/dev/telemetry",  # uppercase identifier
        "pq/v1/site/dev/telemetry/extra",  # name on a non-command channel
        "pq/v1/site/dev/cmd",  # command without a name
        "pq/v1/site/+/telemetry",  # wildcard is not a device
    ],
)
def test_foreign_topics_are_refused(topic):
    with pytest.raises(TopicError):
        parse_topic(topic, "pq")


@pytest.mark.parametrize("device", ["", "Dev", "a/b", "+", "#", "-x", "a" * 64])
def test_identifiers_that_would_break_the_acl_are_refused(device):
    with pytest.raises(TopicError):
        topic_for("pq", "site", device, Channel.TELEMETRY)
