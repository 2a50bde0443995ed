"""Issue #26, item 4: the wall and the API's human-facing texts in both languages. A
screen's language is its URL's `?lang=`, else its scenario's or the wall's configured one,
else the browser's Accept-Language, else English; an unknown `?lang` is refused. The app
is built in this process and spoken to in ASGI (starlette's TestClient needs httpx, which
nothing else here uses); the store holds four hours of one air station's PM2.5 at 60
µg/m³, so its VN_AQI is in the "poor" band."""

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.api.app import build_app
from collector.api.users import Role, Users
from collector.compliance.aqi import BANDS
from collector.compliance.texts import parameter_name
from collector.config import ApiSettings, CollectorConfig, StationSettings, load_collector
from collector.stores.base import ReceivedMessage
from collector.stores.sqlite import SqliteStore
from collector.wall.scenarios import Scenario, WallSettings
from iotruntime.configfile import ConfigError
from iotwire.messages import ClockSync, Reading, Sample, Telemetry

PASSWORD = "night shift 2026"  # noqa: S105 - the test's own user
POOR = next(b for b in BANDS if b.label == "poor")


@dataclass
class Reply:
    status: int
    headers: Message
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Wall:
    """Requests to the app in this process, with a bearer token unless told otherwise."""

    def __init__(self, app: Any, token: str) -> None:
        self.app, self.token = app, token

    def get(self, url: str, token: bool = True, **headers: str) -> Reply:
        sent = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        if token:
            sent["authorization"] = f"Bearer {self.token}"
        return asyncio.run(self._call("GET", url, sent, b""))

    def post_form(self, url: str, form: str, **headers: str) -> Reply:
        sent = {k.replace("_", "-").lower(): v for k, v in headers.items()}
        sent["content-type"] = "application/x-www-form-urlencoded"
        sent["content-length"] = str(len(form.encode()))
        return asyncio.run(self._call("POST", url, sent, form.encode()))

    async def _call(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Reply:
        path, _, query = url.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"collector.test")]
            + [(k.encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("collector.test", 80),
        }
        given = False
        status = 0
        answer = Message()
        out = bytearray()

        async def receive() -> dict[str, object]:
            nonlocal given
            if given:
                await asyncio.Event().wait()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for key, value in message.get("headers", []):
                    answer[key.decode()] = value.decode()
            elif message["type"] == "http.response.body":
                out.extend(message.get("body", b""))

        await self.app(scope, receive, send)
        return Reply(status, answer, out.decode())


def _air_hours(store: SqliteStore, now: datetime) -> None:
    """PM2.5 60 µg/m³ every 10 minutes for the last four hours: VN_AQI 117, "poor"."""
    start = (now - timedelta(hours=4)).replace(minute=0, second=0, microsecond=0)
    batch = []
    for seq, step in enumerate(range(0, 4 * 6), start=1):
        ts = start + timedelta(minutes=10 * step)
        reading = Reading(parameter="pm2_5", value=60.0, unit="µg/m³")
        sample = Sample(sensor="aqms", ts=ts, readings=(reading,))
        message = Telemetry(device="air-9", seq=seq, clock=ClockSync.SYNCED, samples=(sample,))
        batch.append(ReceivedMessage("dd", message, ts))
    store.write_batch(batch)


def _wall(tmp_path: Path, wall: WallSettings | None = None) -> Wall:
    store = SqliteStore(tmp_path / "store.sqlite")
    _air_hours(store, datetime.now(UTC))
    users = Users(tmp_path / "users.sqlite")
    token = users.add("anna", Role.OPS)
    users.set_password("anna", PASSWORD)
    settings = CollectorConfig(
        api=ApiSettings(users_path=tmp_path / "users.sqlite"),
        stations={"air-9": StationSettings(kind="air", name="Duong Dong air", aqi=True)},
        wall=wall or WallSettings(),
    )
    return Wall(build_app(store, users, settings), token)


def _lang(page: str) -> str:
    found = re.search(r'<html lang="(\w+)">', page)
    assert found, page[:200]
    return found[1]


def _texts(page: str) -> dict[str, str]:
    found = re.search(r'<script id="texts" type="application/json">(.*?)</script>', page)
    assert found
    texts: dict[str, str] = json.loads(found[1])
    return texts


@pytest.fixture
def wall(tmp_path) -> Wall:
    return _wall(tmp_path)


def test_lang_in_the_url_gives_the_page_in_vietnamese_with_its_scripts_texts(wall):
    page = wall.get("/wall/scenario/center?lang=vi", accept_language="en-GB")
    assert page.status == 200
    assert _lang(page.text) == "vi"
    assert "<title>Trung tâm điều hành Phú Quốc · màn hình giám sát</title>" in page.text
    assert ">Đăng xuất</button>" in page.text
    texts = _texts(page.text)
    assert texts["Island map"] == "Bản đồ đảo"
    assert texts["never seen"] == "chưa từng kết nối"
    assert texts["not judged: {why}"] == "không đánh giá: {why}"
    english = wall.get("/wall/panel/air?lang=en", accept_language="vi")
    assert _lang(english.text) == "en"
    assert _texts(english.text) == {}
    assert "<title>Phu Quoc operations center · wall</title>" in english.text


def test_without_lang_the_browsers_accept_language_decides_else_english(wall):
    for accept, expected in (
        ("vi-VN,vi;q=0.9,en-US;q=0.8", "vi"),
        ("fr-FR,vi;q=0.5", "vi"),
        ("en-GB,vi;q=0.5", "en"),
        ("fr", "en"),
    ):
        page = wall.get("/wall/panel/map", accept_language=accept)
        assert _lang(page.text) == expected, accept
    assert _lang(wall.get("/wall/panel/map").text) == "en"


def test_an_unknown_lang_is_refused_with_the_choices_in_the_askers_language(wall):
    refused = wall.get("/wall/scenario/center?lang=fr")
    assert refused.status == 400
    assert refused.json()["detail"] == "unknown language 'fr': use one of en, vi"
    refused = wall.get("/wall/panel/map?lang=xx", accept_language="vi")
    assert refused.status == 400
    assert refused.json()["detail"] == (
        "không hỗ trợ ngôn ngữ 'xx': hãy dùng một trong các giá trị en, vi"
    )
    assert wall.get("/wall?lang=klingon").status == 400
    assert wall.get("/login?lang=fr", token=False).status == 400


def test_wall_home_keeps_the_lang_it_was_asked_for(wall):
    home = wall.get("/wall?lang=vi-VN")
    assert (home.status, home.headers["location"]) == (303, "/wall/scenario/center?lang=vi")
    assert wall.get("/wall").headers["location"] == "/wall/scenario/center"


def test_the_configured_language_of_a_scenario_or_the_wall_comes_before_the_browsers(tmp_path):
    settings = WallSettings(
        scenarios={
            "center": Scenario(screens=["map", "air"], language="vi"),
            "visitors": Scenario(grid="1x1", screens=["map"], language="en"),
            "plain": Scenario(grid="1x1", screens=["fleet"]),
        },
        language="vi",
    )
    wall = _wall(tmp_path, settings)
    assert _lang(wall.get("/wall/scenario/center", accept_language="en").text) == "vi"
    assert _lang(wall.get("/wall/scenario/visitors", accept_language="vi").text) == "en"
    assert _lang(wall.get("/wall/scenario/plain", accept_language="en").text) == "vi"
    assert _lang(wall.get("/wall/panel/fleet", accept_language="en").text) == "vi"
    assert _lang(wall.get("/wall/scenario/center?lang=en").text) == "en"


def test_a_wrong_language_in_the_config_names_the_key_and_the_choices(tmp_path):
    for section, key in (
        ({"language": "fr"}, "wall.language"),
        ({"scenarios": {"c": {"screens": ["map"], "language": "vn"}}, "default": "c"},
         "wall.scenarios.c.language"),
    ):  # fmt: skip
        path = tmp_path / "collector.yaml"
        path.write_text(yaml.safe_dump({"wall": section}))
        with pytest.raises(ConfigError) as refused:
            load_collector(path)
        message = str(refused.value)
        assert key in message, message
        assert "'en'" in message
        assert "'vi'" in message


def test_the_sign_in_page_speaks_the_language_asked_for_and_the_refusal_too(wall):
    page = wall.get("/login?lang=vi", token=False)
    assert _lang(page.text) == "vi"
    assert "<title>Đăng nhập · Trung tâm điều hành Phú Quốc</title>" in page.text
    assert ">Tên đăng nhập <input" in page.text
    assert 'name="lang" value="vi"' in page.text
    # On the way to a Vietnamese screen, the sign-in page is Vietnamese too.
    on_the_way = wall.get("/login?next=%2Fwall%2Fpanel%2Fmap%3Flang%3Dvi", token=False)
    assert _lang(on_the_way.text) == "vi"
    assert _lang(wall.get("/login", token=False, accept_language="vi-VN").text) == "vi"
    assert _lang(wall.get("/login", token=False).text) == "en"
    refused = wall.post_form("/login", "name=anna&password=wrong+one&next=%2Fwall&lang=vi")
    assert refused.status == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in refused.text
    english = wall.post_form("/login", "name=anna&password=wrong+one&next=%2Fwall")
    assert "Wrong user name or password." in english.text


def test_api_errors_a_person_reads_follow_accept_language(wall):
    refused = wall.get("/devices", token=False, accept_language="vi")
    assert refused.status == 401
    assert refused.json()["detail"] == (
        "cần mã truy cập (bearer token) hợp lệ (collector users add)"
    )
    english = wall.get("/devices", token=False)
    assert english.json()["detail"] == "a valid bearer token is required (collector users add)"
    missing = wall.get("/wall/api/layout?scenario=nowhere", accept_language="vi;q=1, en;q=0.5")
    assert missing.status == 404
    assert missing.json()["detail"].startswith("không có kịch bản hiển thị 'nowhere'")
    assert wall.get("/wall/scenario/nowhere").json()["detail"] == "no wall scenario 'nowhere'"


def test_the_air_figures_carry_the_bands_public_information_in_the_screens_language(wall):
    answer = wall.get("/wall/api/environment?lang=vi").json()
    [station] = [s for s in answer["stations"] if s["device"] == "air-9"]
    assert station["aqi"]["aqi"]["band"] == "poor"  # the machine value stays English
    vietnamese = POOR.public_information("vi")
    band = answer["bands"]["poor"]
    assert (band["name"], band["colour"]) == (vietnamese.name, vietnamese.colour)
    assert band["general"] == vietnamese.general
    assert band["sensitive"] == vietnamese.sensitive
    assert band["name"] != POOR.public_information("en").name
    assert station["aqi"]["aqi"]["dominant_name"] == parameter_name("pm2_5", "vi")
    english = wall.get("/wall/api/environment", accept_language="en").json()
    assert english["bands"]["poor"]["name"] == POOR.public_information("en").name
    [station_en] = [s for s in english["stations"] if s["device"] == "air-9"]
    # Why a mean was not judged, in the report's own words in each language.
    whys = [
        (vi["why"], en["why"])
        for vi, en in zip(station["means"], station_en["means"], strict=True)
        if en["not_judged"]
    ]
    assert whys
    assert all(vi and en and vi != en for vi, en in whys), whys
    assert all(m["name"] == parameter_name(m["parameter"], "vi") for m in station["means"])
    assert wall.get("/wall/api/environment?lang=de").status == 400
