"""Issue #23, item 8: the API and /metrics over TLS when the config names a certificate,
tokens that expire (and old user databases that keep working), and the OpenAPI document
and /metrics behind a token. A real `collector run` each time, certificates made with the
project's own CA code, and requests as a client makes them."""

import hashlib
import http.client
import json
import sqlite3
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from collector.config import load_collector
from iotruntime.certificates import create_ca, issue_server
from iotruntime.configfile import ConfigError
from testbed.processes import run_cli
from testbed.waiting import free_port
from tests.collector.api.running import start_collector
from tests.helpers import api_request

DOCUMENTATION = ("/openapi.json", "/docs", "/redoc")


def fetch(url: str, token: str | None = None, context: ssl.SSLContext | None = None) -> int:
    """The status of one GET, errors answered by the server included."""
    request = urllib.request.Request(url)  # noqa: S310 - the test's own server
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def certificates(tmp_path):
    ca = create_ca("pq-test-ca")
    server = issue_server(ca, "127.0.0.1")
    paths = {}
    for name, pem in (("ca.pem", ca.cert_pem), ("cert.pem", server.cert_pem)):
        paths[name] = tmp_path / name
        paths[name].write_bytes(pem)
    paths["key.pem"] = tmp_path / "key.pem"
    paths["key.pem"].write_bytes(server.key_pem)
    return paths


def test_the_api_and_metrics_answer_https_to_a_client_trusting_the_ca_and_refuse_plain_http(
    tmp_path, mosquitto, processes, certificates
):
    tls = {"tls_cert": str(certificates["cert.pem"]), "tls_key": str(certificates["key.pem"])}
    scrape_token = tmp_path / "scrape.token"
    scrape_token.write_text("scrape-secret\n")
    metrics_port = free_port()
    collector = start_collector(
        tmp_path / "collector",
        mosquitto,
        processes,
        api=tls,
        metrics={"port": metrics_port, "token_file": str(scrape_token), **tls},
    )
    ops = collector.token("anna", "ops")
    trusting = ssl.create_default_context(cafile=certificates["ca.pem"])
    api = f"https://127.0.0.1:{collector.port}"
    assert fetch(f"{api}/devices", ops, trusting) == 200
    assert fetch(f"{api}/devices", None, trusting) == 401
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(f"{api}/devices", ops, ssl.create_default_context())
    with pytest.raises((OSError, http.client.HTTPException)):
        api_request(f"http://127.0.0.1:{collector.port}/devices", ops)

    metrics = f"https://127.0.0.1:{metrics_port}/metrics"
    request = urllib.request.Request(metrics, headers={"Authorization": "Bearer scrape-secret"})
    with urllib.request.urlopen(request, timeout=10, context=trusting) as answer:  # noqa: S310
        assert "collector_messages_received_total" in answer.read().decode()
    assert fetch(metrics, None, trusting) == 401
    assert fetch(metrics, "a-guess", trusting) == 401
    with pytest.raises((OSError, http.client.HTTPException)):
        fetch(f"http://127.0.0.1:{metrics_port}/metrics", "scrape-secret")
    assert fetch(metrics, "scrape-secret", trusting) == 200  # still serving after that


@pytest.mark.parametrize("section", ["api", "metrics"])
def test_a_certificate_without_its_key_is_a_config_error_naming_the_file_and_the_key(
    tmp_path, section
):
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({section: {"tls_cert": "cert.pem"}}))
    with pytest.raises(ConfigError) as error:
        load_collector(config)
    assert str(error.value).startswith(f"{config}: {section}: ")
    assert "tls_cert is set but tls_key is not" in str(error.value)


def test_a_certificate_that_cannot_be_used_stops_the_collector_with_the_reason(
    tmp_path, mosquitto, processes, certificates
):
    other = issue_server(create_ca("another-ca"), "127.0.0.1")
    wrong_key = tmp_path / "wrong.key"
    wrong_key.write_bytes(other.key_pem)
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "broker": {"host": mosquitto.host, "port": mosquitto.port},
                "store": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")},
                "api": {
                    "port": free_port(),
                    "users_path": str(tmp_path / "users.sqlite"),
                    "tls_cert": str(certificates["cert.pem"]),
                    "tls_key": str(wrong_key),
                },
            }
        )
    )
    collector = processes.start("bad-tls", "collector", "run", "-c", str(config))
    assert collector.wait(30) != 0
    reason = (
        f"error: api: tls_cert {certificates['cert.pem']} with tls_key {wrong_key}"
        " cannot serve https: [X509: KEY_VALUES_MISMATCH]"
    )
    assert reason in " ".join(processes.log("bad-tls").split())  # the console wraps lines


def users_db(collector) -> sqlite3.Connection:
    return sqlite3.connect(load_collector(collector.config).api.users_path)


def users_table(collector) -> str:
    listed = run_cli("collector", "users", "list", "-c", str(collector.config))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return listed.stdout


def test_a_token_expires_and_then_is_refused_saying_so_until_the_user_is_added_again(
    tmp_path, mosquitto, processes
):
    collector = start_collector(tmp_path / "collector", mosquitto, processes)
    token = collector.token("anna", "ops", "--expires-days", "30")
    assert api_request(f"{collector.url}/devices", token)[0] == 200
    in_30_days = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    [row] = [line for line in users_table(collector).splitlines() if "anna" in line]
    assert "active" in row
    assert in_30_days in row

    with users_db(collector) as db:
        db.execute(
            "UPDATE users SET expires = ? WHERE name = 'anna'", ("2026-01-01T00:00:00+00:00",)
        )
    status, body = api_request(f"{collector.url}/devices", token)
    assert status == 401
    assert json.loads(body)["detail"] == (
        "the token of anna expired at 2026-01-01T00:00:00+00:00; ask for a new one"
    )
    [row] = [line for line in users_table(collector).splitlines() if "anna" in line]
    assert "expired" in row

    again = collector.token("anna", "ops")  # no revoke needed for an expired user
    assert api_request(f"{collector.url}/devices", again)[0] == 200
    assert api_request(f"{collector.url}/devices", token)[0] == 401
    refused = run_cli(
        "collector", "users", "add", "anna", "--role", "ops", "-c", str(collector.config)
    )
    assert refused.returncode == 2
    assert "user 'anna' is active; revoke it first" in refused.stdout


def test_a_users_database_from_before_expiry_is_migrated_and_its_tokens_keep_working(
    tmp_path, mosquitto, processes
):
    folder = tmp_path / "collector"
    folder.mkdir()
    with sqlite3.connect(folder / "users.sqlite") as db:
        db.execute(
            "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL,"
            " token_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL, revoked TEXT)"
        )
        digest = hashlib.sha256(b"a-token-from-last-year").hexdigest()
        db.execute(
            "INSERT INTO users VALUES ('chi', 'env', ?, '2025-06-01T00:00:00+00:00', NULL)",
            (digest,),
        )
    collector = start_collector(folder, mosquitto, processes)
    assert api_request(f"{collector.url}/devices", "a-token-from-last-year")[0] == 200
    [row] = [line for line in users_table(collector).splitlines() if "chi" in line]
    assert "active" in row
    assert "never" in row
    with users_db(collector) as db:
        assert "expires" in {column[1] for column in db.execute("PRAGMA table_info(users)")}


def test_the_openapi_document_is_for_token_holders_unless_made_public_or_turned_off(
    tmp_path, mosquitto, processes
):
    by_default = start_collector(tmp_path / "default", mosquitto, processes)
    police = by_default.token("binh", "police")  # any role: the document is not role data
    for path in DOCUMENTATION:
        assert fetch(f"{by_default.url}{path}") == 401, path
        assert fetch(f"{by_default.url}{path}", police) == 200, path

    public = start_collector(tmp_path / "public", mosquitto, processes, api={"docs": "public"})
    for path in DOCUMENTATION:
        assert fetch(f"{public.url}{path}") == 200, path
    assert fetch(f"{public.url}/devices") == 401

    off = start_collector(tmp_path / "off", mosquitto, processes, api={"docs": "off"})
    ops = off.token("anna", "ops")
    for path in DOCUMENTATION:
        assert fetch(f"{off.url}{path}", ops) == 404, path
        assert fetch(f"{off.url}{path}") == 401, path
    assert fetch(f"{off.url}/devices", ops) == 200
