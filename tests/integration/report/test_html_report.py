"""``--testbed-report=PATH.html`` opened in a real headless browser (Debian's chromium through chromedriver):
the failed test's row opens its timeline, with its SQL and its HTTP exchanges; filters hide what they should."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

SUITE = """
import httpx
from testbed.stubs import post


def test_passes(db):
    db.execute("select 1")


def test_order_total_is_wrong(db, http_stub):
    http_stub.stub_for(post("/v1/charge").will_return(json={"status": "approved"}))
    db.execute("insert into customers (name) values ('Sam')")
    httpx.post(http_stub.url + "/v1/charge", json={"amount": 5000})
    total = db.execute("select coalesce(sum(total), 0) from orders").fetchone()[0]
    assert total == 50
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("the HTML report is tested in headless chromium: `apt-get install chromium chromium-driver` "
                    "(Debian/Ubuntu; `make test` installs them when it runs as root with apt)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start
    b = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield b
    finally:
        b.quit()


def test_click_a_failed_test_to_see_its_sql_and_http(project: pytest.Pytester, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    project.makepyfile(test_suite=SUITE)
    result = project.runpytest_subprocess("-p", "no:randomly", "--testbed-report=out/report.html")
    result.assert_outcomes(passed=1, failed=1)
    report = project.path / "out" / "report.html"
    assert "testbed report: out/report.html (2 tests" in result.stdout.str()
    html = report.read_text()
    assert "http://" not in html.split("<script id=testbed-data", 1)[0] and "<link" not in html  # self-contained

    browser.get(report.as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.test")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["passed", "failed"]
    setup_ms = rows[0].find_elements(By.TAG_NAME, "td")[2].text
    assert setup_ms and rows[0].find_elements(By.TAG_NAME, "td")[5].text  # service start billed on its own
    rows[1].click()
    detail = browser.find_element(By.CSS_SELECTOR, "tr.detail")
    text = detail.text
    assert "assert Decimal('0') == 50" in text
    assert "insert into customers (name) values ('Sam')" in text
    assert "select coalesce(sum(total), ?) from orders" in text or "select coalesce(sum(total), 0) from orders" in text
    assert "POST /v1/charge -> 200" in text
    event = detail.find_element(By.XPATH, ".//div[contains(@class, 'ev') and contains(., 'POST /v1/charge')]")
    event.click()
    assert '"amount":5000' in event.find_element(By.CSS_SELECTOR, "pre.data").text

    # Filters: only failed tests; then only HTTP events in the open timeline.
    browser.find_element(By.CSS_SELECTOR, "input[data-group=outcome][value=passed]").click()
    assert not rows[0].is_displayed() and rows[1].is_displayed()
    browser.find_element(By.CSS_SELECTOR, "input[data-group=boundary][value=sql]").click()
    visible = [e.text for e in detail.find_elements(By.CSS_SELECTOR, "div.ev") if e.is_displayed()]
    assert visible and all("http" in v for v in visible), visible
