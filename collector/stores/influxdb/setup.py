"""Making the server ready for the store: once, at first use, so a server that is down
when the collector starts is waited for like any other outage.

With api v1 (`manage_policies`) the store creates the database and its two retention
policies, raw and hourly, and alters them when they exist, so their durations follow the
configured retention. With api v2 (`create_dbrp`) the buckets and their retention are the
operator's; the store maps its InfluxQL database and policy names onto them (DBRP
mappings), so the same InfluxQL reads either API, and names a bucket it cannot find. The
v2 management API is reached through influxdb-client; its failures count as transient.
"""

import logging
import threading

import urllib3
from influxdb_client.domain.dbrp_create import DBRPCreate
from influxdb_client.rest import ApiException
from influxdb_client.service.dbr_ps_service import DBRPsService

from collector.config import InfluxStoreSettings, RetentionSettings
from collector.i18n import services
from collector.stores.base import StoreUnavailableError
from collector.stores.influxdb import influxql as ql
from collector.stores.influxdb.http import InfluxHttp, TransientError
from collector.stores.influxdb.retrying import Retrier

_ = services.gettext

log = logging.getLogger(__name__)


class ServerSetup:
    def __init__(
        self,
        settings: InfluxStoreSettings,
        retention: RetentionSettings,
        http: InfluxHttp,
        retrier: Retrier,
    ) -> None:
        self._settings = settings
        self._retention = retention
        self._http = http
        self._retrier = retrier
        self._prepared = threading.Lock()
        self._is_prepared = False

    def prepare(self) -> None:
        """Create what the store needs on the server, unless done already."""
        with self._prepared:
            if self._is_prepared:
                return
            if self._settings.api == "v1" and self._settings.manage_policies:
                self._retrier.retry(self._create_policies)
            elif self._settings.api == "v2" and self._settings.create_dbrp:
                self._retrier.retry(self._map_buckets)
            self._is_prepared = True

    def _create_policies(self) -> None:
        s, r = self._settings, self._retention
        db = ql.ident(s.database)
        self._http.query(f"CREATE DATABASE {db}", write=True)
        [existing] = self._http.query(f"SHOW RETENTION POLICIES ON {db}", write=True)
        names = {rec["name"] for series in existing for rec in series.records()}
        for policy, days, default in (
            (s.raw_policy, r.raw_days, True),
            (s.hourly_policy, r.hourly_days, False),
        ):
            verb = "ALTER" if policy in names else "CREATE"
            self._http.query(
                f"{verb} RETENTION POLICY {ql.ident(policy)} ON {db} DURATION {days}d"
                f" REPLICATION 1{' DEFAULT' if default else ''}",
                write=True,
            )

    def _map_buckets(self) -> None:
        s, client = self._settings, self._http.client
        # api v2, whose settings require org
        assert client is not None
        assert s.org is not None
        # influxdb-client's management API carries no type annotations.
        service = DBRPsService(client.api_client)  # type: ignore[no-untyped-call]
        try:
            for bucket_name, policy in (
                (s.bucket, s.raw_policy),
                (s.hourly_bucket, s.hourly_policy),
            ):
                mapped = service.get_dbr_ps(org=s.org, db=s.database, rp=policy)  # type: ignore[no-untyped-call]
                if mapped.content:
                    continue
                found = client.buckets_api().find_buckets(name=bucket_name, org=s.org).buckets  # type: ignore[no-untyped-call]
                if not found:
                    raise StoreUnavailableError(
                        _(
                            "bucket {bucket} does not exist in org {org}; create it with its"
                            " retention, e.g. {command}"
                        ).format(
                            bucket=repr(bucket_name),
                            org=repr(s.org),
                            command=f"`influx bucket create -n {bucket_name} -o {s.org} -r 90d`",
                        )
                    )
                service.post_dbrp(  # type: ignore[no-untyped-call]
                    DBRPCreate(  # type: ignore[no-untyped-call]
                        org=s.org,
                        bucket_id=found[0].id,
                        database=s.database,
                        retention_policy=policy,
                        default=policy == s.raw_policy,
                    )
                )
                log.info("mapped InfluxQL %s/%s to bucket %s", s.database, policy, bucket_name)
        except ApiException as exc:
            raise TransientError(f"HTTP {exc.status}: {exc.body or exc.reason}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
