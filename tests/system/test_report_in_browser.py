"""Issue #26: the environmental officer's HTML report in Vietnamese, written by the real
`collector --lang vi export --format html` over the known dataset of export_cases.py and
opened in a real browser (Debian's chromium through selenium): the page says it is
Vietnamese, and each air station's daily VN_AQI shows its band's official name and colour
with the public health advice of Decision 1459, for the general public and for sensitive
groups. Screenshots go to test-artifacts/reports/ for a person to look at."""

import pytest
import yaml
from selenium.webdriver.common.by import By

from collector.compliance.aqi import BANDS
from collector.stores.sqlite import SqliteStore
from iotruntime.i18n import VIETNAMESE
from testbed.processes import run_cli
from tests.collector.exports.export_cases import D1, D2, load
from tests.helpers import REPO
from tests.system.browser import browser

pytestmark = pytest.mark.servers  # runs `collector export` and chromium
SCREENSHOTS = REPO / "test-artifacts" / "reports"


def test_the_vietnamese_report_shows_each_band_and_its_advice(tmp_path):
    store = SqliteStore(tmp_path / "store.sqlite")
    load(store)
    store.close()
    config = tmp_path / "collector.yaml"
    stations = {
        "air-1": {"kind": "air", "name": "Chợ đêm", "aqi": True},
        "air-2": {"kind": "air", "name": "Cảng An Thới", "aqi": True},
    }
    config.write_text(
        yaml.safe_dump({"store": {"kind": "sqlite", "path": str(tmp_path / "store.sqlite")},
                        "stations": stations}, allow_unicode=True),
        encoding="utf-8",
    )  # fmt: skip
    page = tmp_path / "bao-cao.html"
    args = ("-c", str(config), "--from", str(D1), "--to", str(D2), "--format", "html")
    written = run_cli("collector", "--lang", "vi", "export", *args, "--out", str(page))
    assert written.returncode == 0, written.stderr

    moderate = next(b for b in BANDS if b.label == "moderate").public_information(VIETNAMESE)
    good = next(b for b in BANDS if b.label == "good").public_information(VIETNAMESE)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser(1400, 1000) as driver:
        driver.get(page.as_uri())
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
        assert driver.title == f"Báo cáo quan trắc môi trường từ {D1:%d/%m/%Y} đến {D2:%d/%m/%Y}"
        driver.save_screenshot(str(SCREENSHOTS / "report-vi-top.png"))
        air_1 = driver.find_element(By.ID, "station-air-1")
        days = air_1.find_element(By.CSS_SELECTOR, "table.aqi")
        assert days.is_displayed()
        rows = [r.text for r in days.find_elements(By.TAG_NAME, "tr")[1:]]
        assert rows == [
            f"{D1:%d/%m/%Y} 60 Bụi PM2,5 Trung bình Vàng",
            f"{D2:%d/%m/%Y} 100 Bụi PM2,5 Trung bình Vàng",
        ]
        swatch = days.find_element(By.CSS_SELECTOR, "span.band")
        assert swatch.value_of_css_property("background-color") == "rgba(255, 255, 0, 1)"
        advice = air_1.find_element(By.CSS_SELECTOR, "table.advice")
        driver.execute_script("arguments[0].scrollIntoView()", advice)
        assert advice.is_displayed()
        shown = advice.text
        assert "người bình thường" in shown  # the decision's own column names
        assert "nhóm người nhạy cảm" in shown
        for text in (
            f"{moderate.name} ({moderate.colour})",
            moderate.meaning,
            moderate.general,
            moderate.sensitive,
        ):
            assert text in shown, text
        advice.screenshot(str(SCREENSHOTS / "report-vi-advice-air-1.png"))
        air_2 = driver.find_element(By.ID, "station-air-2").find_element(
            By.CSS_SELECTOR, "table.advice"
        )
        driver.execute_script("arguments[0].scrollIntoView()", air_2)
        assert f"{good.name} ({good.colour})" in air_2.text
        assert "Tự do thực hiện các hoạt động ngoài trời." in air_2.text
        driver.save_screenshot(str(SCREENSHOTS / "report-vi-advice-air-2.png"))
