"""The language a command, a report or a browser gets, and numbers and days as its
readers write them."""

from datetime import UTC, date, datetime

import pytest

from iotruntime.i18n import (
    UnknownLanguage,
    best_language,
    day,
    language_from,
    moment,
    number,
    parse_language,
)


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, "en"),
        ([], {"LANG": "vi_VN.UTF-8"}, "vi"),
        ([], {"LANG": "C.UTF-8"}, "en"),
        ([], {"LANGUAGE": "fr:vi", "LANG": "en_US.UTF-8"}, "vi"),
        ([], {"LC_ALL": "en_GB.UTF-8", "LANG": "vi_VN.UTF-8"}, "en"),
        ([], {"LC_MESSAGES": "vi_VN", "LANG": "en_US.UTF-8"}, "vi"),
        (["check", "--lang", "vi"], {"LANG": "en_US.UTF-8"}, "vi"),
        (["--lang=en", "check"], {"LANG": "vi_VN.UTF-8"}, "en"),
        (["--lang", "xx"], {"LANG": "vi_VN.UTF-8"}, "vi"),
    ],
)
def test_language_from_command_line_then_locale(argv, environ, expected):
    assert language_from(argv, environ) == expected


def test_an_unknown_language_is_refused_with_the_choices():
    assert parse_language("vi-VN") == "vi"
    with pytest.raises(UnknownLanguage, match="use one of en, vi"):
        parse_language("fr")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("vi-VN,vi;q=0.9,en-US;q=0.8", "vi"),
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("fr-FR,vi;q=0.5", "vi"),
        ("fr-FR", "en"),
        ("en;q=0.2, vi;q=0.7", "vi"),
        ("vi;q=0, en", "en"),
        ("", "en"),
        ("vi;q=abc, en;q=0.1", "en"),
    ],
)
def test_browser_language_by_weight(header, expected):
    assert best_language(header) == expected


def test_numbers_and_days_as_vietnamese_readers_write_them():
    assert number(1234.5, "vi") == "1.234,5"
    assert number(1234.5, "en") == "1,234.5"
    assert number(7.0, "vi", digits=2) == "7,00"
    assert number(12.4, "vi", digits=0) == "12"
    assert day(date(2026, 12, 1), "vi") == "01/12/2026"
    assert day(date(2026, 12, 1), "en") == "2026-12-01"
    assert moment(datetime(2026, 12, 1, 7, 5, tzinfo=UTC), "vi") == "07:05 01/12/2026"
