"""`edge-agent` in the technician's language: its help and its errors in English and in
Vietnamese, chosen by `--lang` or by the laptop's locale, as the installed command prints
them (in-process runs see the test process's English)."""

import os
import subprocess
from pathlib import Path

import pytest

from testbed.processes import BIN

_LOCALE = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def edge_agent(*args: str, lang: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command with the locale variables cleared, then `LANG` if given; a
    wide terminal, so no message is folded."""
    env = {k: v for k, v in os.environ.items() if k not in _LOCALE}
    env["COLUMNS"] = "160"
    if lang is not None:
        env["LANG"] = lang
    return subprocess.run(
        [str(BIN / "edge-agent"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# Vietnamese by the command line and by the locale a Vietnamese laptop sets.
VIETNAMESE = [
    pytest.param(("--lang", "vi"), None, id="--lang vi"),
    pytest.param((), "vi_VN.UTF-8", id="LANG=vi_VN.UTF-8"),
]
ENGLISH = [
    pytest.param((), None, id="no locale"),
    pytest.param(("--lang", "en"), "vi_VN.UTF-8", id="--lang en over LANG=vi"),
]

BROKEN = """\
device: {id: air-t-01, site: test, kind: air, name: Test station}
broker: {host: 127.0.0.1, port: fast, hots: broker.example}
state_dir: ./state
"""

UNKNOWN_BUS = """\
device: {id: air-t-01, site: test, kind: air, name: Test station}
state_dir: ./state
buses:
  - {name: gw, type: tcp, host: 127.0.0.1, port: 5020}
sources:
  - {name: aqms, type: modbus, bus: rs485-9, profile: pq-sim-air}
"""


@pytest.mark.parametrize(("flags", "lang"), ENGLISH)
def test_help_in_english(flags, lang):
    root = edge_agent(*flags, "--help", lang=lang)
    assert root.returncode == 0, output(root)
    for text in ("Usage: edge-agent", "Edge agent for Phu Quoc field boxes.", "Options"):
        assert text in root.stdout
    assert "Commands" in root.stdout
    assert "Show this message and exit." in root.stdout
    assert "Check this box before leaving it" in root.stdout

    check = edge_agent(*flags, "check", "--help", lang=lang)
    assert check.returncode == 0, output(check)
    assert "Usage: edge-agent check [OPTIONS]" in check.stdout
    assert "agent config (YAML)" in check.stdout
    assert "[required]" in check.stdout
    assert "Exits 1 when any line fails." in check.stdout


@pytest.mark.parametrize(("flags", "lang"), VIETNAMESE)
def test_help_in_vietnamese(flags, lang):
    root = edge_agent(*flags, "--help", lang=lang)
    assert root.returncode == 0, output(root)
    assert "Cách dùng: edge-agent" in root.stdout
    assert "Phần mềm agent cho các thiết bị hiện trường ở Phú Quốc." in root.stdout
    assert "Tùy chọn" in root.stdout
    assert "Lệnh" in root.stdout
    assert "Hiện hướng dẫn này rồi thoát." in root.stdout
    assert "Cài đặt tự hoàn thành lệnh cho shell đang dùng." in root.stdout
    assert "ngôn ngữ hiển thị: en, vi (mặc định: theo LANG)" in root.stdout
    assert "Kiểm tra thiết bị trước khi rời hiện trường" in root.stdout
    assert "Usage:" not in root.stdout

    check = edge_agent(*flags, "check", "--help", lang=lang)
    assert check.returncode == 0, output(check)
    assert "Cách dùng: edge-agent check [OPTIONS]" in check.stdout
    assert "tệp cấu hình agent (YAML)" in check.stdout
    assert "[bắt buộc]" in check.stdout
    assert "Trả mã thoát 1 khi có mục không đạt." in check.stdout


def test_a_missing_config_file(tmp_path):
    missing = tmp_path / "agent.yaml"
    english = edge_agent("status", "-c", str(missing))
    assert english.returncode == 2
    assert f"error: {missing}: file not found" in english.stdout

    vietnamese = edge_agent("--lang", "vi", "status", "-c", str(missing))
    assert vietnamese.returncode == 2
    assert f"lỗi: {missing}: không tìm thấy tệp" in vietnamese.stdout


def test_a_broken_config_names_the_file_and_the_keys(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(BROKEN)
    english = edge_agent("status", "-c", str(config))
    assert english.returncode == 2
    assert str(config) in english.stdout
    assert (
        "broker.port: Input should be a valid integer, unable to parse string as an integer"
        " (got 'fast')"
    ) in english.stdout
    assert "broker.hots: unknown key (check its spelling and indentation)" in english.stdout

    vietnamese = edge_agent("status", "-c", str(config), lang="vi_VN.UTF-8")
    assert vietnamese.returncode == 2
    assert f"lỗi: {config}: " in vietnamese.stdout
    assert (
        "broker.port: giá trị phải là số nguyên, chuỗi này không đọc được thành số nguyên"
        " (giá trị đang là 'fast')"
    ) in vietnamese.stdout
    assert "broker.hots: khóa không hợp lệ (kiểm tra lại chính tả và thụt lề)" in vietnamese.stdout


def test_a_check_across_the_config_in_the_agents_own_words(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(UNKNOWN_BUS)
    english = edge_agent("status", "-c", str(config))
    assert (
        f"{config}: Value error, source 'aqms' is on bus 'rs485-9', which is not among the"
        " buses: gw"
    ) in english.stdout

    vietnamese = edge_agent("--lang", "vi", "status", "-c", str(config))
    assert (
        f"lỗi: {config}: nguồn dữ liệu 'aqms' nằm trên bus 'rs485-9', nhưng bus này không có"
        " trong danh sách buses: gw"
    ) in vietnamese.stdout


def test_invalid_yaml_says_where(tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("device: [\n")
    english = edge_agent("status", "-c", str(config))
    assert f"{config}: invalid YAML at line 2, column 1:" in english.stdout

    vietnamese = edge_agent("status", "-c", str(config), lang="vi_VN.UTF-8")
    assert f"{config}: YAML không hợp lệ ở dòng 2, cột 1:" in vietnamese.stdout


def test_check_reports_each_line_in_the_language(tmp_path):
    missing = tmp_path / "agent.yaml"
    english = edge_agent("check", "-c", str(missing))
    assert english.returncode == 1
    assert "FAIL" in english.stdout
    assert "1 of 1 check(s) failed: config" in english.stdout

    vietnamese = edge_agent("--lang", "vi", "check", "-c", str(missing))
    assert vietnamese.returncode == 1
    assert "KHÔNG ĐẠT" in vietnamese.stdout
    assert "không tìm thấy tệp" in vietnamese.stdout
    assert "1/1 hạng mục không đạt: cấu hình" in vietnamese.stdout


def test_an_unknown_language_is_refused_with_the_choices():
    english = edge_agent("--lang", "xx", "status", "-c", "agent.yaml")
    assert english.returncode == 2
    assert "Invalid value for '--lang': unknown language 'xx': use one of en, vi" in (
        english.stderr
    )

    # The locale still speaks when the --lang given is not a language the command knows.
    vietnamese = edge_agent("--lang", "xx", "status", "-c", "agent.yaml", lang="vi_VN.UTF-8")
    assert vietnamese.returncode == 2
    assert (
        "Giá trị không hợp lệ cho '--lang': không hỗ trợ ngôn ngữ 'xx': chọn một trong en, vi"
    ) in vietnamese.stderr


@pytest.mark.parametrize(
    ("flags", "lang", "missing", "try_help"),
    [
        pytest.param(
            (),
            None,
            "Missing option '--config' / '-c'.",
            "Try 'edge-agent check --help' for help.",
            id="en",
        ),
        pytest.param(
            ("--lang", "vi"),
            None,
            "Thiếu tùy chọn '--config' / '-c'.",
            "Chạy 'edge-agent check --help' để xem hướng dẫn.",
            id="--lang vi",
        ),
        pytest.param(
            (),
            "vi_VN.UTF-8",
            "Thiếu tùy chọn '--config' / '-c'.",
            "Chạy 'edge-agent check --help' để xem hướng dẫn.",
            id="LANG=vi_VN.UTF-8",
        ),
    ],
)
def test_a_missing_required_option(flags, lang, missing, try_help):
    result = edge_agent(*flags, "check", lang=lang)
    assert result.returncode == 2
    assert missing in result.stderr
    assert try_help in result.stderr


def test_a_misspelt_option_is_named_with_the_right_one():
    english = edge_agent("check", "--cfg", "agent.yaml")
    assert "No such option: --cfg (Possible options: --config)" in english.stderr

    vietnamese = edge_agent("--lang", "vi", "check", "--cfg", "agent.yaml")
    assert "Không có tùy chọn --cfg (Các tùy chọn gần giống: --config)" in vietnamese.stderr


def test_a_wrong_sensor_is_explained(tmp_path: Path):
    flags = ("--device", "air-t-01", "--site", "test", "--kind", "air", "--name", "T")
    broker = ("--broker-host", "127.0.0.1", "--ca", str(tmp_path / "ca.crt"))
    sensor = ("--sensor", "pq-sim-air:x", "--serial", "/dev/null", "--out", str(tmp_path))
    english = edge_agent("provision", *flags, *broker, *sensor)
    assert english.returncode == 2
    assert "sensor 'pq-sim-air:x': unit 'x' is not a number" in english.stdout

    vietnamese = edge_agent("--lang", "vi", "provision", *flags, *broker, *sensor)
    assert vietnamese.returncode == 2
    assert "cảm biến 'pq-sim-air:x': địa chỉ unit 'x' không phải là số" in vietnamese.stdout
