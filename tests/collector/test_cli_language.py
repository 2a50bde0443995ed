"""Issue #26, item 1: the `collector` command in Vietnamese and English, run as installed
(the language is decided when the process starts, so only a real process shows it): its
help, a few of its errors naming the file and the key, and a table whose column titles
are Vietnamese while its CSV keeps the English keys programs read."""

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from testbed.collector_setup import collector_config
from testbed.processes import BIN

# How a person asks for Vietnamese: the option, or a laptop set to Vietnamese.
BY_OPTION = ("--lang", "vi")
BY_LOCALE = "vi_VN.UTF-8"


def collector(*args: str, locale: str = "C.UTF-8") -> subprocess.CompletedProcess[str]:
    """`collector ARGS` in a wide terminal, its language from `locale` and `--lang` only:
    the locale variables of the test's own environment are left out."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    }
    return subprocess.run(
        [str(BIN / "collector"), *args],
        env={**env, "LANG": locale, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def in_vietnamese(*args: str) -> list[subprocess.CompletedProcess[str]]:
    """The same command asked for in Vietnamese both ways."""
    return [collector(*BY_OPTION, *args), collector(*args, locale=BY_LOCALE)]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A collector with users and police data but no alarms section; no broker is asked."""
    return collector_config(
        tmp_path,
        SimpleNamespace(host="127.0.0.1", port=1883),
        "collector-language",
        api={"users_path": str(tmp_path / "users.sqlite")},
        alerts={"path": str(tmp_path / "police.sqlite")},
    )


def test_the_help_is_english_by_default_and_vietnamese_when_asked():
    english = collector("--help")
    assert english.returncode == 0, english.stderr
    assert "Operations-center collector for Phu Quoc telemetry." in english.stdout
    assert "The police watchlist: plates every camera watches for." in english.stdout
    for answer in in_vietnamese("--help"):
        assert answer.returncode == 0, answer.stderr
        assert "Bộ thu thập dữ liệu quan trắc của trung tâm điều hành Phú Quốc." in answer.stdout
        assert "Danh sách theo dõi của công an" in answer.stdout
        assert "Báo động: thiết bị mất kết nối hoặc im lặng, số đo vượt ngưỡng." in answer.stdout
        assert "The police watchlist" not in answer.stdout


@pytest.mark.parametrize(
    ("group", "english", "vietnamese"),
    [
        (
            "devices",
            ["Devices: their state and accounting", "collector config (YAML)"],
            ["Thiết bị: trạng thái và thống kê bản tin", "tệp cấu hình collector (YAML)"],
        ),
        (
            "watchlist",
            ["Add a plate to the watchlist, or update its entry.", "Take a plate off"],
            ["Thêm biển số vào danh sách theo dõi", "Gỡ biển số khỏi danh sách theo dõi."],
        ),
        (
            "alarms",
            ["Acknowledge an alarm: someone has seen it and is on it."],
            ["Xác nhận một báo động: đã có người nắm được và đang xử lý."],
        ),
    ],
)
def test_a_group_s_help_in_both_languages(group, english, vietnamese):
    answer = collector(group, "--help")
    assert answer.returncode == 0, answer.stderr
    assert all(text in answer.stdout for text in english), answer.stdout
    for answer in in_vietnamese(group, "--help"):
        assert answer.returncode == 0, answer.stderr
        assert all(text in answer.stdout for text in vietnamese), answer.stdout
        assert not any(text in answer.stdout for text in english), answer.stdout


def test_a_missing_config_file_is_named_in_both_languages(tmp_path):
    missing = str(tmp_path / "nowhere.yaml")
    answer = collector("users", "list", "-c", missing)
    assert (answer.returncode, answer.stdout.strip()) == (2, f"error: {missing}: file not found")
    answer = collector(*BY_OPTION, "users", "list", "-c", missing)
    assert (answer.returncode, answer.stdout.strip()) == (2, f"lỗi: {missing}: không tìm thấy tệp")


def test_a_config_without_the_section_a_command_needs_names_the_file_and_the_key(config):
    answer = collector("alarms", "list", "-c", str(config))
    assert (answer.returncode, answer.stdout.strip()) == (
        2,
        f"error: {config}: alarms: the config has no alarms section",
    )
    answer = collector("alarms", "list", "-c", str(config), locale=BY_LOCALE)
    assert (answer.returncode, answer.stdout.strip()) == (
        2,
        f"lỗi: {config}: alarms: cấu hình không có mục alarms",
    )


def test_a_broken_config_value_names_the_file_and_the_key(tmp_path):
    broken = tmp_path / "collector.yaml"
    broken.write_text(
        yaml.safe_dump({"store": {"kind": "sqlite"}, "ingest": {"silent_after_s": "x"}})
    )
    answer = collector("users", "list", "-c", str(broken))
    assert answer.returncode == 2
    assert f"error: {broken}: ingest.silent_after_s: Input should be a valid number" in (
        answer.stdout
    )
    answer = collector(*BY_OPTION, "users", "list", "-c", str(broken))
    assert answer.returncode == 2
    assert f"lỗi: {broken}: ingest.silent_after_s: " in answer.stdout
    assert "Input should be" not in answer.stdout


def test_bad_option_values_are_refused_in_both_languages(config):
    kind = ("limits", "show", "-c", str(config), "--kind", "lake")
    answer = collector(*kind)
    assert answer.returncode == 2
    assert "'lake' is not one of air, " in answer.stderr
    answer = collector(*kind, locale=BY_LOCALE)
    assert answer.returncode == 2
    assert "'lake' không thuộc air, " in answer.stderr

    since = ("query", "-c", str(config), "--since", "yesterday")
    answer = collector(*since)
    assert answer.returncode == 2
    assert "'yesterday' is neither a duration like 15m, 2h, 7d nor an ISO 8601 time" in (
        answer.stderr
    )
    answer = collector(*BY_OPTION, *since)
    assert answer.returncode == 2
    assert "'yesterday' không phải khoảng thời gian (như 15m, 2h, 7d)" in answer.stderr

    aggregate = ("query", "-c", str(config), "--fn", "mean")
    answer = collector(*aggregate)
    assert (answer.returncode, answer.stdout.strip()) == (
        2,
        "error: --fn and --rollup aggregate: give --every too",
    )
    answer = collector(*aggregate, locale=BY_LOCALE)
    assert (answer.returncode, answer.stdout.strip()) == (
        2,
        "lỗi: --fn và --rollup dùng để tổng hợp: hãy cho thêm --every",
    )


def test_an_unknown_language_is_refused_with_the_choices(config):
    """An unknown `--lang` cannot choose the language of its own refusal: the locale does."""
    answer = collector("--lang", "xx", "users", "list", "-c", str(config))
    assert answer.returncode == 2
    assert "unknown language 'xx': use one of en, vi" in answer.stderr
    answer = collector("--lang", "xx", "users", "list", "-c", str(config), locale=BY_LOCALE)
    assert answer.returncode == 2
    assert "không hỗ trợ ngôn ngữ 'xx': chọn một trong en, vi" in answer.stderr


def test_a_table_s_columns_are_vietnamese_and_its_csv_header_stays_english(config):
    watched = collector(
        "watchlist", "add", "-c", str(config), "51G-678.90", "--reason", "xe bị mất cắp",
        "--by", "officer-1",
    )  # fmt: skip
    assert watched.returncode == 0, watched.stdout + watched.stderr
    table = collector("watchlist", "list", "-c", str(config), locale=BY_LOCALE)
    assert table.returncode == 0, table.stderr
    assert "1 mục trong danh sách theo dõi" in table.stdout
    for label in ("biển số", "lý do", "mức ưu tiên", "còn hiệu lực", "người thêm"):
        assert label in table.stdout
    assert "reason" not in table.stdout
    listed = collector(*BY_OPTION, "watchlist", "list", "-c", str(config), "--csv")
    header, row = listed.stdout.splitlines()
    assert header == "plate,display,reason,priority,expires,active,added_by,added_at"
    assert row.startswith("51G67890,51G-678.90,xe bị mất cắp,normal,,yes,officer-1,")
