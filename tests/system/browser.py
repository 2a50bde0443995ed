"""A real browser for the wall's tests: Debian's chromium, headless, driven through its
chromedriver by selenium, at one wall screen's size. Screenshots go to
`test-artifacts/wall/` at the top of the repository, for a person to look at."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from testbed.waiting import wait_until
from tests.helpers import REPO

SCREENSHOTS = REPO / "test-artifacts" / "wall"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def browser(width: int = 1920, height: int = 1080) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-GB",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: WebDriver, base: str, name: str, password: str, then: str = "/wall") -> None:
    driver.get(f"{base}{then}")
    wait_until(lambda: "/login" in driver.current_url, 10, "the sign-in page")
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "sign-in").click()


def attribute(driver: WebDriver, css: str, name: str) -> str | None:
    """The attribute of the first element `css` finds, read in one script: panels redraw
    as events come, so an element found by one call may be gone by the next."""
    found: str | None = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        " return e ? e.getAttribute(arguments[1]) : null",
        css,
        name,
    )
    return found


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
