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

from tests.serve.conftest import Served, served_with

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

    # "More like this" and "Less like this" grow the query: each hit becomes an example (a
    # chip), and no longer a match
    def listed(d) -> list[str]:
        return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#results li.hit .path")]

    second = results[1].find_element(By.CLASS_NAME, "path").text
    results[1].find_element(By.CSS_SELECTOR, "button.more").click()
    wait_for(browser, lambda d: listed(d) and second not in listed(d))
    assert f"like {second}" in browser.find_element(By.ID, "examples").text
    third = browser.find_elements(By.CSS_SELECTOR, "#results li.hit")[1]
    third_path = third.find_element(By.CLASS_NAME, "path").text
    third.find_element(By.CSS_SELECTOR, "button.less").click()
    wait_for(browser, lambda d: listed(d) and third_path not in listed(d))
    chips = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#examples .chip")]
    assert chips == [f"like {second} ×", f"unlike {third_path} ×"]
    assert "like a440.wav" in browser.find_element(By.ID, "search-status").text
    browser.find_element(By.CSS_SELECTOR, "#examples button.link").click()  # clear them
    wait_for(browser, lambda d: second in listed(d) and third_path in listed(d))
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

    browser.get("about:blank")  # a fresh page, not a hash change of the last test's
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


def point_offset(driver, canvas, path: str) -> tuple[int, int]:
    """Where ``path``'s point is drawn, as an offset from the canvas's centre (CSS px)."""
    return driver.execute_script(
        """
        const [canvas, path] = arguments;
        const i = mapState.data.paths.indexOf(path);
        const { scale, ox, oy } = toScreen(canvas);
        const ratio = window.devicePixelRatio || 1;
        const x = (ox + (mapState.xs[i] - mapState.centreX) * scale) / ratio;
        const y = (oy - (mapState.ys[i] - mapState.centreY) * scale) / ratio;
        return [Math.round(x - canvas.clientWidth / 2), Math.round(y - canvas.clientHeight / 2)];
        """,
        canvas,
        path,
    )


def test_the_map_draws_every_file_plays_a_click_lists_a_selection_and_rings_hits(
    served: Served, browser
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    browser.get("about:blank")  # a fresh page, not a hash change of the last test's
    browser.get(served.url + "/#map")
    canvas = browser.find_element(By.ID, "map-canvas")
    wait_for(browser, lambda d: canvas.get_attribute("data-points") == "5")
    # drawn: the canvas's pixels hold a colour per folder (4 folders), not a blank
    colours = browser.execute_script(
        """
        const canvas = arguments[0];
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        const seen = new Set();
        for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] && !(data[i] === 255 && data[i + 1] === 255 && data[i + 2] === 255)) {
                seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
            }
        }
        return seen.size;
        """,
        canvas,
    )
    assert colours >= 4
    legend = browser.find_element(By.ID, "map-legend").text
    assert "tones (2)" in legend and "machines (1)" in legend
    Select(browser.find_element(By.ID, "map-colour")).select_by_value("verdict")
    verdicts = browser.find_element(By.ID, "map-legend").text.split("\n")
    assert verdicts == ["anomaly (2)", "normal (1)", "none (2)"]  # never scanned: none

    # a click on a point plays its file
    dx, dy = point_offset(browser, canvas, "tones/a440.wav")
    ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).click().perform()
    player = browser.find_element(By.ID, "map-player")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState", player) >= 2)
    assert "tones/a440.wav" in browser.find_element(By.ID, "map-playing").text
    key = served.service.catalogue.snapshot.read(columns=["key", "path"]).to_pylist()
    key = next(r["key"] for r in key if r["path"] == "tones/a440.wav")
    assert player.get_attribute("src").endswith(f"/api/audio/{key}")
    wait_for(browser, lambda d: d.execute_script("return arguments[0].currentTime", player) > 0)

    # a box over the whole map selects every file, listed with a play button each
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    half_width, half_height = canvas.size["width"] // 2 - 4, canvas.size["height"] // 2 - 4
    ActionChains(browser).key_down(Keys.SHIFT).move_to_element_with_offset(
        canvas, -half_width, -half_height
    ).click_and_hold().move_to_element_with_offset(
        canvas, half_width, half_height
    ).release().key_up(Keys.SHIFT).perform()
    listed = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#map-selected li"))
    assert len(listed) == 5
    assert browser.find_element(By.ID, "map-selection-title").text == "5 files selected"
    screenshot(browser, "serve-map.png")

    # the selection searches like its files: they become the query's examples
    browser.find_element(By.ID, "map-search-selection").click()
    liked = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#examples .chip.like"))
    assert len(liked) == 5
    wait_for(browser, lambda d: "0 matches for like" in d.find_element(By.ID, "search-status").text)
    # the file playing searches like itself; back on the map, its hits are ringed
    browser.find_element(By.ID, "tab-map").click()
    browser.find_element(By.CSS_SELECTOR, "#map-playing button").click()
    hits = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))
    assert hits[0].find_element(By.CLASS_NAME, "path").text == "tones/a440.wav"
    browser.find_element(By.ID, "tab-map").click()
    wait_for(browser, lambda d: canvas.get_attribute("data-hits") == str(len(hits)))


def test_label_a_hit_while_listening_and_see_the_label_set_version_move(
    served: Served, browser
) -> None:
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(served.url + "/")
    browser.find_element(By.ID, "query-ref").send_keys("tones/a440.wav")
    browser.find_element(By.ID, "search-button").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results li.hit"))
    browser.find_element(By.ID, "label-set").send_keys("listening", Keys.TAB)
    status = browser.find_element(By.ID, "label-set-status")
    wait_for(browser, lambda d: "a new label set" in status.text)

    hit = browser.find_elements(By.CSS_SELECTOR, "#results li.hit")[0]
    state = play(browser, hit.find_element(By.TAG_NAME, "audio"))
    assert state.get("error") is None and state["time"] > 0
    hit.find_element(By.CSS_SELECTOR, ".label-value").send_keys("tonal")
    hit.find_element(By.CSS_SELECTOR, "button.give-label").click()
    labelled = "#results li.hit .chip.labelled"
    chip = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, labelled))[0]
    assert chip.text.startswith("listening=tonal")
    first = int(wait_for(browser, lambda d: status.get_attribute("data-version")))
    assert f"version {first}" in status.text and "tonal 1" in status.text
    screenshot(browser, "serve-labelling.png")

    chip.find_element(By.TAG_NAME, "button").click()  # take it back
    wait_for(browser, lambda d: status.get_attribute("data-version") == str(first + 1))
    assert not browser.find_elements(By.CSS_SELECTOR, labelled)
    history = httpx.get(f"{served.url}/api/label-sets/listening").json()["history"]
    assert [(h["who"], h["version"]) for h in history] == [("local", first + 1), ("local", first)]
    assert history[1]["added"] == {"tones/a440.wav": "tonal"}


def _trained_on_the_served_catalogue(settings) -> None:
    """Label set ``sound`` (two files labelled), a logistic regression fitted on them standing in
    for ``classify train`` (five files are too few to cross-validate), and its predictions for
    the catalogue as ``classify run`` stores them."""
    from datetime import UTC, datetime

    from sklearn.linear_model import LogisticRegression

    from tasks.classify.labelsets import CatalogueIndex
    from tasks.classify.predict import classify_catalogue
    from tasks.classify.store import Classifier
    from tasks.classify.training import Evaluation, labelled_embeddings
    from tasks.resources import classifier_store, label_sets, predictions_table, snapshot_table

    snapshot = snapshot_table(settings)
    rows = snapshot.read(columns=["key", "path", "source_uri"])
    label_sets(settings).change(
        "sound",
        CatalogueIndex.of(rows),
        "setup",
        add={"tones/a440.wav": "tonal", "noise/white.ogg": "noisy"},
    )
    labelled = label_sets(settings).read("sound")
    keys, vectors, version = labelled_embeddings(snapshot, labelled.keys)
    label_of = dict(zip(labelled.keys, labelled.labels, strict=True))
    model = LogisticRegression().fit(vectors, [label_of[k] for k in keys])
    evaluation = Evaluation(
        "logistic_regression", 0, 2, ["noisy", "tonal"], 0.0, {}, 0.0, [], [], 0.0
    )
    classifier = Classifier(
        "sound", "fitted-in-test", model, evaluation, labelled.fingerprint, labelled.version,
        snapshot.uri, version, datetime.now(UTC),
    )  # fmt: skip
    classifier_store(settings).save(classifier)
    classify_catalogue(
        snapshot, classifier, predictions_table(settings, "sound"), 0.6, "test", vectors
    )


def test_the_review_queue_plays_each_file_and_one_key_labels_it(
    served: Served, browser, tmp_path
) -> None:
    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with served_with(served, classify_uri=str(tmp_path / "classify")) as (http, service):
        _trained_on_the_served_catalogue(service.settings)
        queue = http.get("/api/label-sets/sound/review").json()
        assert {item["path"] for item in queue} <= {
            "tones/a220.flac", "machines/ticker.wav", "sweeps/chirp.mp3"
        } and queue  # fmt: skip
        browser.get(str(http.base_url).rstrip("/") + "/#review")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#review-set option"))
        browser.find_element(By.CSS_SELECTOR, "#review-form button").click()
        items = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".review-item"))
        assert [i.find_element(By.CLASS_NAME, "path").text for i in items] == [
            item["path"] for item in queue
        ]  # the least sure first, as the API says
        first = items[0]
        assert "focus" in first.get_attribute("class")
        audio = first.find_element(By.TAG_NAME, "audio")
        wait_for(browser, lambda d: d.execute_script("return arguments[0].currentTime", audio) > 0)
        status = browser.find_element(By.ID, "review-status")
        assert "1 noisy, 2 tonal" in status.text
        ActionChains(browser).send_keys("2").perform()  # one key: the second label
        wait_for(browser, lambda d: "labelled tonal" in status.text)
        screenshot(browser, "serve-review.png")
        focused = browser.find_elements(By.CSS_SELECTOR, ".review-item.focus")
        assert len(queue) == 1 or focused[0].get_attribute("data-key") == queue[1]["key"]
        labels = httpx.get(str(http.base_url).rstrip("/") + "/api/label-sets/sound").json()
        assert labels["labels"][queue[0]["key"]] == "tonal"
        assert labels["history"][0]["who"] == "local"
        assert str(labels["version"]) == status.get_attribute("data-version")
