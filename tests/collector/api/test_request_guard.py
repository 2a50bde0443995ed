"""Issue #23, item 5: the API checks the token before it reads a body, and reads no body
past `api.max_body_mb`. A real `collector run` with the police endpoints (whose CSV import
takes the largest legitimate body), spoken to on a bare socket so the test decides what the
client sends, and when."""

import json

import pytest

from collector.config import DEFAULT_MAX_BODY_MB
from tests.collector.api.running import LAST_CHUNK, chunked, push, start_collector

MB = 1024 * 1024
CSV = b"plate,reason,priority\n51G-678.90,stolen car,low\n"


@pytest.fixture
def police_api(tmp_path, mosquitto, processes):
    collector = start_collector(
        tmp_path / "collector", mosquitto, processes, alerts={"path": str(tmp_path / "p.sqlite")}
    )
    return collector, collector.token("binh", "police")


def post_head(path: str, token: str | None, length: int | None, kind: str = "text/csv") -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {kind}"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    return "\r\n".join(lines) + "\r\n\r\n"


def detail(response: bytes) -> str:
    return str(json.loads(response.partition(b"\r\n\r\n")[2])["detail"])


def test_an_unauthenticated_100_mb_post_is_refused_401_without_the_body_being_read(police_api):
    collector, _ = police_api
    # Nothing of the body sent yet, and the answer is already there.
    for length in (100 * MB, None):
        answer = push(collector.port, post_head("/watchlist/import", None, length))
        assert (answer.status, answer.body_sent) == (401, 0)
        assert b"connection: close" in answer.response.lower()
    push(collector.port, post_head("/watchlist/import", None, MB), [b"x" * MB])  # warm up
    before = collector.rss_kb()
    answer = push(
        collector.port, post_head("/watchlist/import", "not-a-token", 100 * MB), [b"x" * MB] * 100
    )
    after = collector.rss_kb()
    assert answer.status == 401
    assert detail(answer.response) == "a valid bearer token is required (collector users add)"
    # The connection is closed on the client: what it got to send is what the sockets buffer.
    assert answer.body_sent < 100 * MB / 2
    assert after - before < 4 * 1024, f"resident memory grew {after - before} kB"


def test_a_body_over_the_limit_is_refused_413_declared_or_streamed_and_a_normal_post_works(
    police_api,
):
    collector, police = police_api
    limit = DEFAULT_MAX_BODY_MB * MB
    declared = push(collector.port, post_head("/watchlist/import", police, limit + 1))
    assert (declared.status, declared.body_sent) == (413, 0)
    assert detail(declared.response) == f"the request body is larger than {limit} bytes"

    before = collector.rss_kb()
    streamed = push(
        collector.port,
        post_head("/watchlist/import", police, None),
        [chunked(b"x" * MB)] * (2 * DEFAULT_MAX_BODY_MB) + [LAST_CHUNK],
    )
    assert streamed.status == 413
    assert detail(streamed.response) == f"the request body is larger than {limit} bytes"
    assert streamed.body_sent < 2 * limit
    assert collector.rss_kb() - before < 2 * DEFAULT_MAX_BODY_MB * 1024

    imported = push(collector.port, post_head("/watchlist/import", police, len(CSV)), [CSV])
    assert imported.status == 200, imported.response
    assert json.loads(imported.response.partition(b"\r\n\r\n")[2])["added"] == 1
    entry = json.dumps({"plate": "68-B1 234.56", "reason": "snatch theft"}).encode()
    watched = push(
        collector.port,
        post_head("/watchlist", police, None, "application/json"),
        [chunked(entry[:10]), chunked(entry[10:]), LAST_CHUNK],
    )
    assert watched.status == 200, watched.response
    assert json.loads(watched.response.partition(b"\r\n\r\n")[2])["created"] is True
