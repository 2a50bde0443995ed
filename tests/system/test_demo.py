"""`make demo` runs the whole path on embedded defaults and reports nothing lost."""

import subprocess
import sys

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.servers

DEMO = REPO / "scripts" / "demo.py"


def test_demo_shows_four_station_kinds_a_police_alert_loses_nothing_and_exports(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(DEMO),
            "--duration",
            "16",
            "--interval",
            "1",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    for kind in ("air", "domestic_water", "wastewater", "noise"):
        assert f" {kind} " in output
    assert "every message the agents produced is in the store, exactly once" in output
    assert "Traceback" not in output
    assert "Export for the environmental officer" in output
    assert "4 station(s)" in output
    assert "POLICE ALERT" in output
    words = " ".join(output.split())  # rich wraps lines at the terminal's width
    assert "Camera pole 7, Tran Hung Dao x Nguyen Trung Truc (10.2149, 103.9588)" in words
    assert "alert.raise" in output
    report = (tmp_path / "demo" / "report.html").read_text(encoding="utf-8")
    assert report.count('<figure class="chart"') >= 4
