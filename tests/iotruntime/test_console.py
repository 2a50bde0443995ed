"""An error is one line on any terminal: a path in it copies whole."""

from rich.console import Console

from iotruntime import console as shared


def test_an_error_with_a_long_path_stays_on_one_line(monkeypatch):
    narrow = Console(width=40, record=True, force_terminal=False)
    monkeypatch.setattr(shared, "console", narrow)
    path = "/var/lib/collector/a-rather-long-folder-name/site-limits.yaml"
    shared.fail(ValueError(f"{path}: limits[0].source: say where this figure comes from"))
    [line] = narrow.export_text().splitlines()
    assert line == f"error: {path}: limits[0].source: say where this figure comes from"


def test_a_reading_keeps_its_instruments_precision():
    assert [shared.number_text(v) for v in (1008.9, 7.05, 0.000123, 41.0, 123456.78)] == [
        "1008.9",
        "7.05",
        "0.000123",
        "41",
        "123457",
    ]
