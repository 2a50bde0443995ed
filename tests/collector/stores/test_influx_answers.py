"""An InfluxDB store whose server answers `/query` with something other than InfluxQL's
answer to what it asked: VictoriaMetrics (a list of databases, whatever the question), or
a server or proxy answering with another shape. The store is unavailable, and says why;
no KeyError escapes to the committer, the rollup or /metrics."""

from datetime import timedelta

import pytest

from collector.query import ReadingQuery
from collector.stores.base import ReceivedMessage, StoreUnavailableError
from testbed.local_http import LocalHttpServer, QuietHandler
from tests.collector.stores.store_cases import T0, influx_store, message

pytestmark = pytest.mark.servers  # VictoriaMetrics or a local HTTP stand-in


def batch() -> list[ReceivedMessage]:
    return [ReceivedMessage("dd", message("air-1", 1, 1, pm10=1.0), T0)]


def every_call_is_unavailable(url: str, why: str) -> None:
    with influx_store(url, retry_for_s=0.5) as store:
        for call in (
            lambda: store.write_batch(batch()),
            store.devices,
            store.rollup_horizon,
            lambda: store.query(ReadingQuery()),
            lambda: store.roll_up(T0, T0 + timedelta(hours=1)),
        ):
            with pytest.raises(StoreUnavailableError, match=why):
                call()


def test_victoria_metrics_answering_every_query_with_its_databases_is_no_store(
    victoria_metrics,
):
    every_call_is_unavailable(victoria_metrics.url, "the answer has no")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{}", r"expected 1 result\(s\) to InfluxQL"),
        (b'{"results": "none"}', "expected 1 result"),
        (b'{"results": [{"statement_id": 0}, {"statement_id": 1}]}', "expected 1 result"),
        (b'{"results": [{"series": {"name": "x"}}]}', "no list of series"),
        (b'{"results": [{"series": [{"name": "x", "values": [[1]]}]}]}', "without columns"),
        (b"<html>Bad gateway</html>", "not JSON"),
        (b"[]", "expected 1 result"),
    ],
)
def test_a_query_answer_of_another_shape_makes_the_store_unavailable(body, why):
    class Odd(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.startswith("/query"):
                self.answer(200, body)
            else:
                self.answer(204)

    # A setup statement meets the odd answer first; with the database made by hand, a
    # batch's ledger lookup, the rollup and the queries do.
    with LocalHttpServer(Odd) as server:
        every_call_is_unavailable(f"http://127.0.0.1:{server.port}", why)
        with influx_store(f"http://127.0.0.1:{server.port}", manage_policies=False) as store:
            with pytest.raises(StoreUnavailableError, match=why):
                store.write_batch(batch())
            with pytest.raises(StoreUnavailableError, match=why):
                store.devices()
