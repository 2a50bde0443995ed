"""Issue #19, item 4: signing in at a browser. A real `collector run`; passwords set with
`collector users password`; the cookie's flags, what a session may and may not do, the
way to the sign-in page, guessing slowed, a revoked user's session ended."""

import http.client
import json
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from email.message import Message

import pytest

from collector.api.guard import RECHECK_S
from collector.api.sign_in import LOCKOUT, MAX_FAILURES, Failures
from testbed.processes import run_cli
from tests.collector.api.running import Collector, start_collector
from tests.helpers import EventStream

PASSWORD = "night shift 2026"  # noqa: S105 - the test's own user


def request(
    collector: Collector,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, Message, str]:
    """One request, redirects not followed: the test looks at each answer itself."""
    connection = http.client.HTTPConnection("127.0.0.1", collector.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read().decode(errors="replace")
    finally:
        connection.close()


def sign_in(collector: Collector, name: str, password: str, back: str = "/wall"):
    form = urllib.parse.urlencode({"name": name, "password": password, "next": back}).encode()
    kind = {"Content-Type": "application/x-www-form-urlencoded"}
    return request(collector, "POST", "/login", kind, form)


def session_of(headers: Message) -> str:
    cookie = headers["Set-Cookie"]
    return cookie.split(";")[0]


@pytest.fixture
def collector(tmp_path, mosquitto, processes) -> Collector:
    found = start_collector(
        tmp_path / "collector", mosquitto, processes, alerts={"path": str(tmp_path / "p.sqlite")}
    )
    for name, role in (("anna", "ops"), ("quan", "police")):
        found.person(name, role, PASSWORD)
    return found


def test_a_right_password_gives_a_strict_httponly_cookie_that_reads_but_never_writes(collector):
    status, headers, _ = sign_in(collector, "quan", PASSWORD, back="/wall/panel/police")
    assert status == 303
    assert headers["Location"] == "/wall/panel/police"
    flags = [f.strip().lower() for f in headers["Set-Cookie"].split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http here; https sets it
    cookie = {"Cookie": session_of(headers)}
    status, _, body = request(collector, "GET", "/whoami", cookie)
    assert (status, json.loads(body)) == (200, {"name": "quan", "role": "police"})
    assert request(collector, "GET", "/alerts", cookie)[0] == 200
    # A page of another site could make the browser send this: refused, whatever it asks.
    status, _, body = request(collector, "POST", "/watchlist", cookie, b"{}")
    assert status == 401
    assert json.loads(body)["detail"] == (
        "a browser session may only read; a change needs a bearer token"
    )
    status, _, body = request(collector, "GET", "/wall/api/layout?scenario=incident", cookie)
    assert status == 200
    assert json.loads(body)["screens"] == ["map", "police", "alarms", "fleet"]


def test_a_wrong_password_or_name_is_refused_alike_and_guessing_locks_the_name(collector):
    for name, password in (("anna", "not it at all"), ("nobody", PASSWORD)):
        status, headers, body = sign_in(collector, name, password)
        assert status == 401
        assert "Set-Cookie" not in headers
        assert "Wrong user name or password." in body
    for _ in range(4):  # five wrong in all for anna
        assert sign_in(collector, "anna", "still wrong!!")[0] == 401
    status, headers, body = sign_in(collector, "anna", PASSWORD)
    assert status == 429
    assert "Set-Cookie" not in headers
    assert "Too many wrong passwords" in body
    assert sign_in(collector, "quan", PASSWORD)[0] == 303  # another name is not locked


def test_a_page_without_a_session_leads_to_the_sign_in_page_and_back_only_to_this_server(
    collector,
):
    status, headers, _ = request(collector, "GET", "/wall/panel/map?x=1", {"Accept": "text/html"})
    assert status == 303
    assert headers["Location"] == "/login?next=%2Fwall%2Fpanel%2Fmap%3Fx%3D1"
    assert request(collector, "GET", "/wall/panel/map", {"Accept": "application/json"})[0] == 401
    status, _, page = request(collector, "GET", "/login?next=%2F%2Fevil.example%2F")
    assert status == 200
    assert 'value="/wall"' in page
    assert "evil.example" not in page
    status, headers, _ = sign_in(collector, "anna", PASSWORD, back="https://evil.example/")
    assert (status, headers["Location"]) == (303, "/wall")
    for path in ("/wall/static/wall.js", "/wall/static/vendor/leaflet.js", "/favicon.ico"):
        assert request(collector, "GET", path)[0] == 200, path


def test_revoking_a_user_or_signing_out_ends_its_sessions(collector):
    _, headers, _ = sign_in(collector, "anna", PASSWORD)
    first = {"Cookie": session_of(headers)}
    _, headers, _ = sign_in(collector, "anna", PASSWORD)
    second = {"Cookie": session_of(headers)}
    assert request(collector, "GET", "/devices", first)[0] == 200
    status, headers, _ = request(collector, "POST", "/logout", first)
    assert (status, headers["Location"]) == (303, "/login")
    status, _, body = request(collector, "GET", "/devices", first)
    assert status == 401
    assert "session has ended" in json.loads(body)["detail"]
    assert request(collector, "GET", "/devices", second)[0] == 200
    done = run_cli("collector", "users", "revoke", "anna", "-c", str(collector.config))
    assert done.returncode == 0
    assert request(collector, "GET", "/devices", second)[0] == 401


def test_a_short_password_or_an_unknown_user_is_refused_by_the_cli(collector):
    short = run_cli(
        "collector", "users", "password", "anna", "--stdin", "-c", str(collector.config),
        input="short\n",
    )  # fmt: skip
    assert short.returncode == 2
    assert "at least 10 characters" in short.stdout + short.stderr
    unknown = run_cli(
        "collector", "users", "password", "zed", "--stdin", "-c", str(collector.config),
        input=PASSWORD + "\n",
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no active user 'zed'" in unknown.stdout + unknown.stderr


def test_an_open_stream_ends_once_its_user_is_revoked(collector):
    police = collector.token("binh", "police")
    alerts = EventStream(collector.port, police)
    assert alerts.status == 200
    done = run_cli("collector", "users", "revoke", "binh", "-c", str(collector.config))
    assert done.returncode == 0
    revoked = time.monotonic()
    alerts.wait_closed(RECHECK_S + 15)
    assert time.monotonic() - revoked <= RECHECK_S + 15


def test_failures_are_forgotten_after_the_lockout_names_and_all():
    failures = Failures()
    now = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)
    for i in range(MAX_FAILURES):
        failures.add("anna", now)
        failures.add(f"made-up-{i}", now)
    assert failures.locked("anna", now + timedelta(minutes=1))
    assert not failures.locked("made-up-0", now + timedelta(minutes=1))
    later = now + LOCKOUT + timedelta(seconds=1)
    assert not failures.locked("anna", later)
    assert failures._at == {}  # nothing kept of names nobody tries any more
