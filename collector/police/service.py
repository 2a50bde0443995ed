"""The police side of a running collector, opened in one place: the database, the plate
log that raises alerts, the senders that deliver them and what police query.

Ingest records reads through `plates` and wakes the senders; the API reads `alerts`,
`watchlist`, `deliveries` and `dispatches`; `collector run` runs the webhook senders (the
units' too), the escalation check and the purge.
"""

from dataclasses import dataclass, field

from collector.config import AlertSettings
from collector.fleet.registry import Registry
from collector.police.database import PoliceDb
from collector.police.deliveries import MQTT, Deliveries, Wakeup
from collector.police.dispatch import Dispatches, units_of
from collector.police.records import AlertLog, PlateLog
from collector.police.watchlist import Watchlist
from collector.police.webhooks import WebhookSender


@dataclass
class Police:
    settings: AlertSettings
    db: PoliceDb
    plates: PlateLog
    alerts: AlertLog
    watchlist: Watchlist
    deliveries: Deliveries
    wakeup: Wakeup
    webhooks: list[WebhookSender] = field(default_factory=list)
    registry: Registry | None = None
    dispatches: Dispatches | None = None

    def close(self) -> None:
        self.db.close()


def open_police(settings: AlertSettings, registry: Registry | None = None) -> Police:
    db = PoliceDb(settings.path)
    deliveries, wakeup = Deliveries(db), Wakeup()
    webhooks = [WebhookSender(w, deliveries, wakeup) for w in settings.webhooks]
    plates = PlateLog(
        db,
        channels=(MQTT, *(w.channel for w in webhooks)),
        window_s=settings.window_s,
        reads_days=settings.reads_days,
        locate=registry.get if registry is not None else None,
        units=units_of(settings.units),
    )
    webhooks += [WebhookSender(u.webhook, deliveries, wakeup) for u in settings.units if u.webhook]
    return Police(
        settings,
        db,
        plates,
        AlertLog(db),
        Watchlist(db),
        deliveries,
        wakeup,
        webhooks,
        registry,
        Dispatches(db),
    )
