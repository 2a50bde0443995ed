"""How a message says it waited out an outage: an MQTT 5 user property, not a payload
field, because the payload was committed to the outbox before anyone knew it would wait.

Consumers that must tell live from replayed data (plate alerts above all) read it with
`is_backlog`. Over MQTT 3.1.1, which has no properties, messages carry no mark.
"""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

BACKLOG_PROPERTY = "pq-backlog"

BACKLOG = Properties(PacketTypes.PUBLISH)
BACKLOG.UserProperty = (BACKLOG_PROPERTY, "1")


def is_backlog(properties: Properties | None) -> bool:
    pairs = getattr(properties, "UserProperty", None) or []
    return (BACKLOG_PROPERTY, "1") in pairs
