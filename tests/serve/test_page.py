"""The page in a real browser: Debian's headless Chromium driven by Selenium against the service
on loopback. Upload a query, see ranked results, play one; open the anomaly view and check its
player starts at the worst window.

Set PAGE_SCREENSHOTS_DIR to keep screenshots of both views (the documentation's come from here).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Served

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM and CHROMEDRIVER):
        message = (
            "Debian's chromium and chromium-driver are not installed (scripts/test installs them)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds: float = 60):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page replaces its result list as answers arrive
    waiting = WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(condition)


def play(driver, audio) -> dict:
    """Play an audio element; its state once playback has moved (or the error)."""
    return driver.execute_async_script(
        """
        const [audio, done] = arguments;
        const report = () => done({
            ready: audio.readyState, duration: audio.duration, time: audio.currentTime,
            error: audio.error && audio.error.code});
        audio.play().then(() => setTimeout(report, 700)).catch((e) => done({error: String(e)}));
        """,
        audio,
    )


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("PAGE_SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def wait_for_results(browser, paths: set[str]) -> None:
    """Wait until the listed results are exactly ``paths``."""
    from selenium.webdriver.common.by import By

    wait_for(
        browser,
        lambda d: {e.text for e in d.find_elements(By.CSS_SELECTOR, "#results .path")} == paths,
    )


def test_search_by_upload_listen_and_refine(served: Served, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(served.url + "/")
    browser.find_element(By.ID, "query-file").send_keys(str(served.catalogue / "tones/a440.wav"))
    results = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))
    assert results[0].find_element(By.CLASS_NAME, "path").text == "tones/a440.wav"
    assert "matches for a440.wav" in browser.find_element(By.ID, "search-status").text
    assert results[0].find_elements(By.CLASS_NAME, "chip")  # its AudioSet tags
    screenshot(browser, "serve-search.png")

    state = play(browser, results[0].find_element(By.TAG_NAME, "audio"))
    assert state.get("error") is None, state
    assert state["ready"] >= 2 and state["time"] > 0
    assert state["duration"] == pytest.approx(3.0, abs=0.05)

    # a result as the next query
    second = results[1].find_element(By.CLASS_NAME, "path").text
    results[1].find_element(By.TAG_NAME, "button").click()
    wait_for(
        browser,
        lambda d: d.find_element(By.CSS_SELECTOR, "#results li.hit .path").text == second,
    )
    # a folder filter
    browser.find_element(By.ID, "path-prefix").send_keys("tones/")
    browser.find_element(By.ID, "search-button").click()
    wait_for_results(browser, {"tones/a440.wav", "tones/a220.flac"})
    # a predicted-label facet, with the files' counts; the folder filter cleared first
    browser.find_element(By.ID, "path-prefix").clear()
    facet = wait_for(browser, lambda d: d.find_elements(By.ID, "facet-kind"))[0]
    options = [o.text for o in facet.find_elements(By.TAG_NAME, "option")]
    assert options == ["any", "other (2)", "tonal (2)"]
    Select(facet).select_by_value("other")
    browser.find_element(By.ID, "search-button").click()
    wait_for_results(browser, {"noise/white.ogg", "machines/ticker.wav"})
    chips = browser.find_elements(By.CSS_SELECTOR, "#results .chip.predicted")
    assert {chip.text for chip in chips} == {"kind=other"}


def test_anomaly_view_player_starts_at_the_worst_window(served: Served, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/")
    browser.find_element(By.ID, "tab-anomalies").click()
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#anomalies tbody tr"))
    first = rows[0]
    assert first.find_element(By.CLASS_NAME, "verdict").text == "anomaly"
    assert first.find_element(By.CLASS_NAME, "path").text == "machines/ticker.wav"
    audio = first.find_element(By.TAG_NAME, "audio")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState", audio) >= 1)
    assert browser.execute_script("return arguments[0].currentTime", audio) == pytest.approx(2.0)
    marker = first.find_element(By.CSS_SELECTOR, ".timeline > b")
    # the worst window, 2-3 s of a 5 s clip
    assert marker.get_attribute("style") == "left: 40%; width: 20%;"
    screenshot(browser, "serve-anomalies.png")


def test_anomaly_trend_draws_each_machines_threshold_and_a_click_plays_the_worst_window(
    served: Served, browser
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(served.url + "/#anomalies")
    points = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#trend .point"))
    assert len(points) == 3
    lines = browser.find_elements(By.CSS_SELECTOR, "#trend path.threshold")
    assert {line.get_attribute("data-machine") for line in lines} == {"pump-1", "fan-2"}
    for line in lines:  # a drawn line, across the chart: its path has a real extent
        box = browser.execute_script("return arguments[0].getBBox().width", line)
        assert box > 100
    # each point carries the threshold it was judged against: 1.0 for every clip here, so the
    # anomalous clips sit above the line and the normal one below it
    ticker = browser.find_element(By.CSS_SELECTOR, '#trend .point[data-path="machines/ticker.wav"]')
    white = browser.find_element(By.CSS_SELECTOR, '#trend .point[data-path="noise/white.ogg"]')
    line_y = browser.execute_script(
        "const p = arguments[0].getPointAtLength(0); return p.y;", lines[0]
    )
    assert float(ticker.get_attribute("cy")) < line_y < float(white.get_attribute("cy"))
    assert "anomaly" in ticker.get_attribute("class")

    Select(browser.find_element(By.ID, "trend-machine")).select_by_value("pump-1")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#trend .point")) == 2)
    ticker = browser.find_element(By.CSS_SELECTOR, '#trend .point[data-path="machines/ticker.wav"]')
    ticker.click()
    player = browser.find_element(By.ID, "trend-player")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState", player) >= 1)
    assert player.get_attribute("src").endswith("#t=2")
    # it plays from the worst window on (2 s into the clip), not from the start
    started = browser.execute_script("return arguments[0].currentTime", player)
    assert 2.0 <= started < 3.0
    screenshot(browser, "serve-anomaly-trend.png")


def test_a_segment_hit_and_an_anomaly_show_a_spectrogram_with_their_span_marked(
    served: Served, browser
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/")
    browser.find_element(By.ID, "query-ref").send_keys("machines/ticker.wav")
    browser.find_element(By.ID, "segments").click()
    browser.find_element(By.ID, "search-button").click()
    drawn = '#results li.hit .spectro[data-drawn="true"]'
    pictures = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, drawn))
    hit = browser.find_elements(By.CSS_SELECTOR, "#results li.hit")[0]
    picture = hit.find_element(By.CSS_SELECTOR, ".spectro")
    assert picture in pictures
    # the canvas holds a picture, not a blank: its pixels vary
    spread = browser.execute_script(
        """
        const canvas = arguments[0].querySelector("canvas");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let low = 255, high = 0;
        for (let i = 0; i < data.length; i += 4) {
            low = Math.min(low, data[i]);
            high = Math.max(high, data[i]);
        }
        return [canvas.width, canvas.height, high - low];
        """,
        picture,
    )
    assert spread[1] == 64 and spread[0] > 100 and spread[2] > 50
    # the marker spans the matched second, as a share of the file's length
    start, end = (float(x) for x in hit.get_attribute("data-span").split("-"))
    assert end > start
    marker = picture.find_element(By.CLASS_NAME, "marker")
    assert marker.is_displayed()
    left = float(marker.value_of_css_property("left").removesuffix("px"))
    width = float(picture.value_of_css_property("width").removesuffix("px"))
    assert left / width == pytest.approx(start / 5.0, abs=0.02)  # ticker.wav lasts 5 s

    browser.find_element(By.ID, "tab-anomalies").click()
    row_picture = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, '#anomalies .spectro[data-drawn="true"]'),
    )[0]
    row_marker = row_picture.find_element(By.CLASS_NAME, "marker")
    assert row_marker.get_attribute("style") == "left: 40%; width: 20%;"  # 2-3 s of 5 s
    screenshot(browser, "serve-spectrograms.png")


def test_duplicates_view_lists_groups_and_isolated_files_with_players(
    served: Served, browser
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/")
    browser.find_element(By.ID, "tab-duplicates").click()
    threshold = browser.find_element(By.ID, "duplicates-threshold")
    threshold.clear()
    threshold.send_keys("0.0")  # every file of a random-weight catalogue is this alike
    browser.find_element(By.CSS_SELECTOR, "#duplicates-form button").click()
    groups = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#duplicate-groups li"))
    members = groups[0].find_elements(By.CSS_SELECTOR, ".member .path")
    assert len(groups) == 1 and len(members) == 5
    assert len(groups[0].find_elements(By.TAG_NAME, "audio")) == 5
    rows = browser.find_elements(By.CSS_SELECTOR, "#isolated tbody tr")
    assert len(rows) == 5  # fewer files than asked for: every one, least alike first
    alike = [float(row.find_elements(By.TAG_NAME, "td")[2].text) for row in rows]
    assert alike == sorted(alike)
    status = browser.find_element(By.ID, "duplicates-status").text
    assert "1 groups of near-duplicates among 5 files" in status
    screenshot(browser, "serve-duplicates.png")
