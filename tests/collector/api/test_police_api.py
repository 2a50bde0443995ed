"""Police at work through the API of a real `collector run`: a watchlist kept over HTTP,
an alert streamed as server-sent events to a real HTTP client with the pole's name and
place from the device registry, posted to a webhook, acknowledged, and every step in the
audit trail; and no other role let in anywhere."""

import asyncio
import base64
import json
import random
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import aiomqtt
import cv2
import numpy as np
import pytest

from iotwire import encode
from iotwire.messages import PlateAlert
from testbed.collector_setup import collector_config
from testbed.plate_scenes import Condition, Layout, make_scene
from testbed.processes import run_cli
from testbed.waiting import free_port, wait_for_port, wait_until
from testbed.webhook_receiver import WebhookReceiver
from tests.helpers import EventStream, api_request, metrics, plate_read


def post_json(url: str, token: str | None, payload: object) -> tuple[int, str]:
    return api_request(url, token, "POST", json.dumps(payload).encode(), "application/json")


@pytest.fixture
def police_collector(tmp_path, mosquitto, processes):
    port = free_port()
    secret = tmp_path / "console.secret"
    secret.write_text("shared-secret\n")
    receiver = WebhookReceiver().__enter__()
    webhook = {"name": "console", "url": receiver.url, "secret_file": str(secret)}
    config = collector_config(
        tmp_path,
        mosquitto,
        "collector-police",
        api={"port": port, "users_path": str(tmp_path / "users.sqlite")},
        alerts={
            "path": str(tmp_path / "police.sqlite"),
            "webhooks": [webhook],
            "units": [{"name": "ward-7", "poles": ["cam-1"]}, {"name": "port", "poles": ["cam-9"]}],
        },
        registry={"path": str(tmp_path / "devices.sqlite")},
        metrics={"port": free_port()},
    )
    bundle = tmp_path / "cam-1.yaml"
    bundle.write_text(
        "device: cam-1\nsite: pole-7\nkind: camera_pole\n"
        "name: Tran Hung Dao x Nguyen Trung Truc\nlocation: {lat: 10.2163, lon: 103.9598}\n"
    )
    broken = tmp_path / "cam-2.yaml"
    broken.write_text("device: cam-2\nsite: pole-8\nkind: camera\nname: Bai Truong\n")
    imported = run_cli(
        "collector", "devices", "import", "-c", str(config), str(bundle), str(broken)
    )
    assert imported.returncode == 1
    assert "registered cam-1 (Tran Hung Dao x Nguyen Trung Truc, camera_pole)" in imported.stdout
    assert f"{broken}: kind: Input should be" in imported.stdout.replace("\n", "")
    tokens = {}
    for name, role in (("binh", "police"), ("anna", "ops"), ("chi", "env"), ("dung", "technician")):
        added = run_cli("collector", "users", "add", name, "--role", role, "-c", str(config))
        tokens[role] = added.stdout.strip().splitlines()[-1]
    collector = processes.start("collector", "collector", "run", "-c", str(config))
    wait_for_port(port)
    wait_until(lambda: "subscribed to" in processes.log("collector"), 20, "collector subscribed")
    yield config, port, tokens, receiver, collector
    receiver.__exit__()


def publish_read(
    mosquitto, seq: int, text: str, display: str, pole: int = 1, ts: datetime | None = None
) -> None:
    device = f"cam-{pole}"
    read = plate_read(seq, text, display=display, device=device, ts=ts or datetime.now(UTC))

    async def send() -> None:
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            await client.publish(f"pq/v1/pole-{pole + 6}/{device}/plate", encode(read), qos=1)

    asyncio.run(send())


def test_an_alert_reaches_police_by_stream_and_webhook_and_its_handling_is_audited(
    police_collector, mosquitto
):
    config, port, tokens, receiver, collector = police_collector
    url, police = f"http://127.0.0.1:{port}", tokens["police"]
    status, body = post_json(
        f"{url}/watchlist",
        police,
        {"plate": "68-B1 234.56", "reason": "snatch theft, night market", "priority": "high"},
    )
    assert (status, json.loads(body)["entry"]["plate"]) == (200, "68B123456")
    status, body = post_json(f"{url}/watchlist", police, {"plate": "68I-123.45", "reason": "x"})
    assert status == 422
    assert "'I' is not a series letter" in json.loads(body)["detail"]
    csv_body = b"plate,reason,priority\n51G-678.90,stolen car,low\nnot a plate,x,low\n"
    status, body = api_request(f"{url}/watchlist/import", police, "POST", csv_body, "text/csv")
    imported = json.loads(body)
    assert (status, imported["added"], [r["line"] for r in imported["rejected"]]) == (200, 1, [3])
    status, body = api_request(f"{url}/watchlist/51G-678.90", police, "DELETE")
    assert (status, json.loads(body)["plate"]) == (200, "51G67890")
    assert api_request(f"{url}/watchlist/51G-678.90", police, "DELETE")[0] == 404

    stream = EventStream(port, police)
    assert stream.status == 200
    publish_read(mosquitto, 1, "68B123456", "68-B1 234.56")
    wait_until(lambda: stream.events, 10, "the alert on the event stream")
    [(event_id, event, data)] = stream.events
    alert = PlateAlert.model_validate_json(data)
    assert (event_id, event, alert.plate, alert.match) == ("1", "plate_alert", "68B123456", "exact")
    assert alert.pole is not None
    assert (alert.pole.name, alert.pole.lat, alert.pole.lon) == (
        "Tran Hung Dao x Nguyen Trung Truc",
        10.2163,
        103.9598,
    )
    wait_until(lambda: receiver.requests, 10, "the webhook")
    assert PlateAlert.model_validate_json(receiver.requests[0].body).id == alert.id
    wait_until(
        lambda: metrics(config).get('collector_webhook_delivered_total{webhook="console"}') == 1,
        10,
        "the webhook delivery counted",
    )

    replay = EventStream(port, police, last_event_id="0")  # a console that was offline
    wait_until(lambda: replay.events, 10, "the replayed alert")
    assert [e[0] for e in replay.events] == ["1"]
    stream.close()
    replay.close()
    status, body = api_request(
        f"{url}/alerts/{alert.id}/ack", police, "POST", b'{"note": "unit 12"}', "application/json"
    )
    assert status == 200, body
    assert json.loads(body)["acknowledged"]["by"] == "binh"
    assert api_request(f"{url}/alerts/{alert.id}/ack", police, "POST")[0] == 409
    assert api_request(f"{url}/alerts/no-such-alert/ack", police, "POST")[0] == 404
    status, body = api_request(f"{url}/alerts/{alert.id}", police)
    channels = {d["channel"]: d["state"] for d in json.loads(body)["deliveries"]}
    assert channels == {
        "mqtt": "delivered",
        "webhook:console": "delivered",
        "dispatch:ward-7": "delivered",  # the unit covering cam-1, on its MQTT topic
    }

    status, body = api_request(f"{url}/audit?subject={alert.id}", police)
    trail = [(r["actor"], r["action"], r["detail"].get("channel")) for r in json.loads(body)]
    assert sorted(trail) == sorted(
        [
            ("collector", "alert.raise", None),
            ("collector", "alert.dispatch", None),
            ("collector", "alert.deliver", "dispatch:ward-7"),
            ("collector", "alert.deliver", "mqtt"),
            ("collector", "alert.deliver", "webhook:console"),
            ("collector", "alert.deliver", "sse:binh"),
            ("collector", "alert.deliver", "sse:binh"),
            ("binh", "alert.acknowledge", None),
        ]
    )
    status, body = api_request(f"{url}/audit?action=watchlist.add&format=csv", police)
    assert status == 200
    assert body.splitlines()[0] == "id,at,actor,action,subject,detail"
    assert [line.split(",")[2] for line in body.splitlines()[1:]] == ["binh", "binh"]
    listed = run_cli("collector", "alerts", "list", "-c", str(config), "--csv")
    assert "acknowledged by binh" in listed.stdout

    console_left_open = EventStream(port, police)
    collector.terminate()
    assert collector.wait(8) == 0  # an open stream does not hold the collector up
    console_left_open.close()


def test_no_other_role_and_no_missing_token_reaches_any_police_endpoint(police_collector):
    _, port, tokens, _, _ = police_collector
    url = f"http://127.0.0.1:{port}"
    status, body = api_request(f"{url}/openapi.json", tokens["police"])
    paths = json.loads(body)["paths"]
    police_endpoints = [
        (
            method.upper(),
            path.replace("{alert_id}", "x")
            .replace("{plate}", "68A12345")
            .replace("{photo_id}", "x"),
        )
        for path, methods in paths.items()
        for method, spec in methods.items()
        if "police" in spec.get("tags", ())
    ]
    assert len(police_endpoints) == 18
    for method, path in police_endpoints:
        body = b"{}" if method == "POST" else None
        for role in ("ops", "env", "technician"):
            status, answer = api_request(
                f"{url}{path}", tokens[role], method, body, "application/json"
            )
            assert (method, path, status) == (method, path, 403), answer
        assert api_request(f"{url}{path}", None, method, body, "application/json")[0] == 401
    assert api_request(f"{url}/alerts?since=not-a-time", tokens["police"])[0] == 422


def test_a_plate_search_finds_the_pole_and_its_crop_and_is_audited_with_its_purpose(
    police_collector, mosquitto
):
    config, port, tokens, _, _ = police_collector
    url, police = f"http://127.0.0.1:{port}", tokens["police"]
    publish_read(mosquitto, 1, "29A16273", "29A-162.73")
    # A vehicle passing three poles, read once with a confusion (Z for 2).
    start = datetime.now(UTC) - timedelta(minutes=30)
    for pole, text in ((1, "51F-123.45"), (2, "51F-1Z3.45"), (3, "51F-123.45")):
        canonical, when = text.replace("-", "").replace(".", ""), start + timedelta(minutes=pole)
        publish_read(mosquitto, 2 if pole == 1 else 1, canonical, text, pole=pole, ts=when)
    search = f"{url}/plates/search?q=*6273&purpose=case+PQ-0417"

    def answered() -> list:
        return json.loads(api_request(search, police)[1])["sightings"]

    wait_until(answered, 20, "the read searchable")
    [sighting] = answered()
    assert (sighting["plate"], sighting["pole"], sighting["camera"]) == (
        "29A16273",
        "Tran Hung Dao x Nguyen Trung Truc",
        "north",
    )
    assert (sighting["lat"], sighting["lon"]) == (10.2163, 103.9598)
    assert sighting["crop_jpeg_b64"] == "/9j/4AAQSkZJRg=="
    route = f"{url}/plates/search?purpose=case+PQ-0417&order=oldest&crops=false&q="

    def poles_passed(query: str) -> list[tuple[str, str, str | None]]:
        found = json.loads(api_request(route + query, police)[1])["sightings"]
        return [(s["device"], s["match"], s["crop_jpeg_b64"]) for s in found]

    wait_until(lambda: len(poles_passed("51F12345&fuzzy=true")) == 3, 20, "three poles")
    assert poles_passed("51F12345") == [("cam-1", "exact", None), ("cam-3", "exact", None)]
    assert poles_passed("51F1%3F345") == [
        ("cam-1", "exact", None),
        ("cam-2", "exact", None),
        ("cam-3", "exact", None),
    ]
    assert poles_passed("51F12345&fuzzy=true") == [
        ("cam-1", "exact", None),
        ("cam-2", "confusion", None),
        ("cam-3", "exact", None),
    ]
    status, body = api_request(f"{url}/plates/search?q=51F-123.45", police)
    assert status == 422
    assert "purpose" in body
    status, body = api_request(f"{url}/plates/search?q=51*&purpose=case+PQ-0417", police)
    assert status == 422
    assert "at least 3 known characters" in json.loads(body)["detail"]
    cli = run_cli(
        "collector", "plates", "search", "51F-12?.45", "-c", str(config),
        "--purpose", "case PQ-0417", "--by", "binh", "--csv",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.strip().splitlines()
    assert lines[0] == 'time,plate,match,pole,"lat,lon",camera,confidence'
    assert len(lines) == 3  # the header, then cam-3 and cam-1, newest first
    assert "51F-123.45,exact,Tran Hung Dao x Nguyen Trung Truc" in lines[2]
    refused = run_cli(
        "collector", "plates", "search", "51F12345", "-c", str(config),
        "--purpose", " ", "--by", "binh",
    )  # fmt: skip
    assert refused.returncode == 2
    assert "purpose: say why" in refused.stdout + refused.stderr
    status, body = api_request(f"{url}/audit?action=plates.search", police)
    searches = [(r["actor"], r["subject"], r["detail"]["purpose"]) for r in json.loads(body)]
    assert ("binh", "*6273", "case PQ-0417") in searches
    assert ("binh", "51F-12?.45", "case PQ-0417") in searches


def test_an_alert_is_dispatched_to_the_unit_covering_its_pole_which_acknowledges_it(
    police_collector, mosquitto
):
    _, port, tokens, _, _ = police_collector
    url, police = f"http://127.0.0.1:{port}", tokens["police"]
    ward = EventStream(port, police, path="/alerts/stream?unit=ward-7")
    harbour = EventStream(port, police, path="/alerts/stream?unit=port")
    post_json(f"{url}/watchlist", police, {"plate": "30A-999.99", "reason": "stolen car"})
    publish_read(mosquitto, 1, "30A99999", "30A-999.99")
    wait_until(lambda: ward.events, 20, "the alert streamed to the ward's console")
    time.sleep(1)  # what the harbour's stream would get by now
    ward.close()
    harbour.close()
    [(_, kind, data)] = ward.events
    alert_id = json.loads(data)["id"]
    assert (kind, harbour.events) == ("plate_alert", [])
    status, body = api_request(f"{url}/alerts/{alert_id}/dispatch", police)
    shown = json.loads(body)
    assert (status, shown["acknowledged"], shown["escalation"]) == (200, False, None)
    assert [u["unit"] for u in shown["units"]] == ["ward-7"]
    ack = f"{url}/alerts/{alert_id}/dispatch/ack"
    status, body = post_json(ack, police, {"unit": "ward-7", "note": "patrol 3 on its way"})
    assert status == 200, body
    [unit] = json.loads(body)["units"]
    assert (unit["acknowledged_by"], unit["note"]) == ("binh", "patrol 3 on its way")
    status, body = post_json(ack, police, {"unit": "ward-7"})
    assert (status, "already" in json.loads(body)["detail"]) == (409, True)
    status, body = post_json(ack, police, {"unit": "port"})
    assert (status, "not dispatched to unit 'port'" in json.loads(body)["detail"]) == (409, True)
    assert api_request(f"{url}/alerts/nope/dispatch", police)[0] == 404


def test_a_citizens_photo_is_read_by_the_poles_reader_and_its_plate_put_on_the_watchlist(
    police_collector, tmp_path
):
    config, port, tokens, _, _ = police_collector
    url, police = f"http://127.0.0.1:{port}", tokens["police"]
    scene = make_scene(random.Random(1), Layout.MOTORBIKE, Condition.DAY)
    jpeg = cv2.imencode(".jpg", scene.image)[1].tobytes()
    upload = f"{url}/photos?case=PQ-0417"
    status, body = api_request(upload, police, "POST", jpeg, "image/jpeg")
    assert status == 201, body
    photo = json.loads(body)
    [read] = photo["plates"]
    assert (read["plate"], photo["case"], photo["by"]) == (scene.plate.canonical, "PQ-0417", "binh")
    assert 0.5 < read["confidence"] <= 1
    crop = cv2.imdecode(np.frombuffer(base64.b64decode(read["crop_jpeg_b64"]), np.uint8), 1)
    assert crop is not None
    fetch = urllib.request.Request(f"{url}/photos/{photo['id']}/image")  # noqa: S310
    fetch.add_header("Authorization", f"Bearer {police}")
    with urllib.request.urlopen(fetch, timeout=10) as answer:  # noqa: S310 - test server
        assert (answer.status, answer.headers["Content-Type"]) == (200, "image/jpeg")
        assert answer.read() == jpeg
    status, body = post_json(
        f"{url}/photos/{photo['id']}/watch", police, {"plate": read["display"], "reason": "theft"}
    )
    assert status == 200, body
    entry = json.loads(body)
    assert entry["plate"] == scene.plate.canonical
    assert entry["reason"] == f"theft (case PQ-0417, photo {photo['id']})"
    status, body = post_json(f"{url}/photos/{photo['id']}/watch", police, {"plate": "30A99999"})
    assert (status, "was not read in photo" in body) == (422, True)
    for refused, reason in (
        (b"plate 51F-123.45", "not a photo: send a JPEG, PNG or WebP image"),
        (b"", "an empty upload"),
    ):
        status, body = api_request(upload, police, "POST", refused, "image/jpeg")
        assert (status, reason in json.loads(body)["detail"]) == (422, True)
    assert api_request(f"{url}/photos", police, "POST", jpeg, "image/jpeg")[0] == 422  # no case
    status, body = api_request(f"{url}/audit?action=photo.upload", police)
    [uploaded] = json.loads(body)
    assert uploaded["detail"]["case"] == "PQ-0417"
    assert uploaded["detail"]["plates"] == [scene.plate.canonical]
    png = tmp_path / "from-a-phone.png"
    cv2.imwrite(str(png), scene.image)
    cli = ["collector", "photos", "upload", str(png), "-c", str(config), "--by", "binh"]
    uploaded = run_cli(*cli, "--case", "PQ-0418")
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert scene.plate.display in uploaded.stdout
    photo_id = uploaded.stdout.split("photo ", 1)[1].split(":", 1)[0]
    watched = run_cli(
        "collector", "photos", "watch", photo_id, scene.plate.display, "-c", str(config),
        "--by", "binh", "--reason", "snatch theft",
    )  # fmt: skip
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert f"(case PQ-0418, photo {photo_id})" in watched.stdout
    refused = run_cli(*cli[:3], str(config), *cli[4:], "--case", "PQ-0418")
    assert refused.returncode == 2
    assert "not a photo" in refused.stdout
