"""What the collector's services say to people (config errors, the device registry, the
watchlist, the alarm book) reaches them through the installed `collector` command, in the
language of its `--lang`: Vietnamese for the operations center, the police and the
environmental officer, English kept. The file and the key at fault are named in both."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iotruntime.broker_access import password_entry

COLLECTOR = Path(sys.executable).parent / "collector"
# The process's own locale must not choose the language: `--lang` alone does.
LOCALE_VARIABLES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
# One box's password entry (salted: made once, so its two bundles sign in alike).
ENTRY = password_entry("air-dd-01", "secret")


def collector(language: str, *args: str) -> str:
    """Run the installed command; what it printed, output and errors together."""
    environment = {k: v for k, v in os.environ.items() if k not in LOCALE_VARIABLES}
    done = subprocess.run(
        [str(COLLECTOR), "--lang", language, *args],
        capture_output=True,
        text=True,
        env={**environment, "LANG": "C.UTF-8", "COLUMNS": "400"},
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "collector.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "store": {"kind": "sqlite", "path": "telemetry.sqlite"},
                "alerts": {"path": "police.sqlite"},
                "registry": {"path": "devices.sqlite"},
                "alarms": {"path": "alarms.sqlite"},
            }
        )
    )
    return path


def bundle(folder: Path, kind: str) -> Path:
    path = folder / f"air-dd-01-{kind}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "device": "air-dd-01",
                "site": "duong-dong",
                "kind": kind,
                "name": "Dương Đông market",
                "credential": {
                    "username": "air-dd-01",
                    "password_entry": ENTRY,
                },
            }
        )
    )
    return path


CONFIG_PROBLEM = {
    "en": "hourly_days must not be shorter than raw_days",
    "vi": "hourly_days không được ngắn hơn raw_days",
}


@pytest.mark.parametrize("language", ["en", "vi"])
def test_a_broken_config_names_the_file_and_the_key_in_the_language_asked(
    language: str, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"retention": {"raw_days": 90, "hourly_days": 30}}))
    shown = collector(language, "watchlist", "list", "--config", str(path))
    assert f"{path}: retention: " in shown
    assert CONFIG_PROBLEM[language] in shown


REGISTERED_AS = {
    "en": "air-dd-01 is registered as air, not noise; import with --replace to change what it is",
    "vi": "air-dd-01 đã được đăng ký là air, không phải noise; hãy nhập với --replace để đổi"
    " loại thiết bị",
}


@pytest.mark.parametrize("language", ["en", "vi"])
def test_a_bundle_changing_a_registered_box_is_refused_in_the_language_asked(
    language: str, config: Path, tmp_path: Path
) -> None:
    collector(language, "devices", "import", "--config", str(config), str(bundle(tmp_path, "air")))
    other = bundle(tmp_path, "noise")
    shown = collector(language, "devices", "import", "--config", str(config), str(other))
    assert f"{other}: kind: {REGISTERED_AS[language]}" in shown


WATCHLIST = {
    "en": ("a watchlist entry needs a reason", "68A12345 is not on the watchlist"),
    "vi": (
        "biển số đưa vào danh sách theo dõi cần có lý do",
        "68A12345 không có trong danh sách theo dõi",
    ),
}


@pytest.mark.parametrize("language", ["en", "vi"])
def test_a_bad_watchlist_request_is_refused_in_the_language_asked(
    language: str, config: Path
) -> None:
    no_reason, not_watched = WATCHLIST[language]
    shown = collector(
        language,
        "watchlist",
        "add",
        "--config",
        str(config),
        "68A-123.45",
        "--reason",
        " ",
        "--by",
        "officer-1",
    )
    assert no_reason in shown
    shown = collector(
        language, "watchlist", "remove", "--config", str(config), "68A-123.45", "--by", "officer-1"
    )
    assert not_watched in shown


NO_ALARM = {"en": "no alarm 0123abcd", "vi": "không có báo động 0123abcd"}


@pytest.mark.parametrize("language", ["en", "vi"])
def test_an_unknown_alarm_is_named_in_the_language_asked(language: str, config: Path) -> None:
    shown = collector(
        language, "alarms", "ack", "--config", str(config), "0123abcd", "--by", "duty-1"
    )
    assert NO_ALARM[language] in shown


THRESHOLD_ALARM = {
    "en": "wq-1 probe/ph: 2 pH under 6.5",
    "vi": "wq-1 probe/ph: 2 pH dưới ngưỡng 6.5",
}


@pytest.mark.parametrize("language", ["en", "vi"])
def test_an_alarm_says_what_broke_in_the_language_of_the_collector_raising_it(
    language: str,
) -> None:
    """An alarm's text is written once, by `collector run`, in its language: what the duty
    officer reads on the console and in the webhook."""
    script = (
        "from collector.alarms.judging import judge_threshold;"
        " print(judge_threshold('wq-1 probe/ph', 2.0, 'pH', 6.5, 8.5, 0.0).message)"
    )
    environment = {k: v for k, v in os.environ.items() if k not in LOCALE_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", script, "--lang", language],
        capture_output=True,
        text=True,
        env={**environment, "LANG": "C.UTF-8"},
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == THRESHOLD_ALARM[language]
