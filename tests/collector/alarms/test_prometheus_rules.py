"""The Prometheus alerting rules shipped in deploy/prometheus/ are valid and behave as
their unit tests say, checked by promtool (Debian's `prometheus` package)."""

import shutil
import subprocess

import pytest

from tests.helpers import REPO

RULES = REPO / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: apt-get install prometheus (scripts/install-test-deps.sh)"
        )
    return subprocess.run(
        [found, *args], cwd=RULES, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_rules_are_valid():
    result = promtool("check", "rules", "collector-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "collector-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
