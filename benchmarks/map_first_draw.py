"""The page's Map view at scale: how long a browser takes from opening the view to the first
drawn map, and to redraw it (a pan or zoom), with ``--files`` points.

    python benchmarks/map_first_draw.py --files 100000 --out benchmarks/results/vm-map-draw.json

A synthetic snapshot of that many files is written and mapped (as benchmarks/map_projection.py
does), ``audio-embeddings serve``'s app runs on loopback (random-weight model: no query is
embedded), and Debian's headless Chromium opens the Map view ``--repeats`` times, each in a
fresh page: ``fetch`` (the request, gzipped transfer and JSON parse), ``draw`` (the pixels) and
``first draw`` (the whole) as the page measures them, then 10 redraws. Before the browser, two
plain requests of ``GET /api/map`` time the service building the body and then serving it
from its cache. ``--screenshot`` keeps one picture of the map.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.map_projection import write_snapshot  # noqa: E402
from benchmarks.workdir import machine, scratch_folder  # noqa: E402


def _serve(settings):
    """The service's app on a free loopback port, in a thread: (url, stop)."""
    import socket

    import uvicorn

    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    service = SearchService.start(settings)
    serve_settings = settings.serve_settings()
    app = create_app(service, Authenticator(serve_settings), serve_settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)
        service.close()

    return f"http://127.0.0.1:{port}", stop


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_script_timeout(120)
    return driver


def measure(url: str, repeats: int, screenshot: str | None) -> dict:
    import httpx
    from selenium.webdriver.support.ui import WebDriverWait

    # the service builds the map's body on the first request, then keeps it
    started = time.perf_counter()
    cold = httpx.get(f"{url}/api/map", headers={"accept-encoding": "gzip"}, timeout=300)
    cold_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    httpx.get(f"{url}/api/map", headers={"accept-encoding": "gzip"}, timeout=300)
    warm_ms = (time.perf_counter() - started) * 1000
    driver = _browser()
    runs = []
    try:
        for run in range(repeats):
            driver.get(f"{url}/?run={run}#map")  # a new page each time, not a hash change
            stats = WebDriverWait(driver, 300).until(
                lambda d: d.execute_script("return window.mapStats")
            )
            redraws = sorted(
                driver.execute_script("return Array.from({length: 10}, () => drawMap())")
            )
            stats["redrawMedianMs"] = round(redraws[len(redraws) // 2], 1)
            stats["pointsDrawn"] = int(driver.execute_script(
                "return document.getElementById('map-canvas').dataset.points"))  # fmt: skip
            runs.append(stats)
            print(json.dumps(stats), flush=True)
        if screenshot:  # the view alone: the header would show the benchmark's empty index
            driver.find_element("id", "view-map").screenshot(screenshot)
    finally:
        driver.quit()
    return {
        "api_map_first_request_ms": round(cold_ms),
        "api_map_later_request_ms": round(warm_ms),
        "api_map_bytes": len(cold.content),
        "api_map_gzipped_bytes": int(cold.headers.get("content-length", 0)),
        "runs": runs,
        "first_draw_ms_median": sorted(r["firstDrawMs"] for r in runs)[len(runs) // 2],
        "redraw_ms_median": sorted(r["redrawMedianMs"] for r in runs)[len(runs) // 2],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--screenshot", default=None, help="save the map as this PNG")
    parser.add_argument("--out", default=None)
    parser.add_argument("--smoke", action="store_true", help="1,000 files, once; no file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.repeats, args.out = 1_000, 1, None
    from tasks.catalogue_map.update import update_map
    from tasks.model.cnn14 import write_random_checkpoint
    from tasks.settings import Settings

    workdir = scratch_folder("map-draw-bench-", args.workdir)
    if (workdir / "map").exists():  # a kept --workdir: its map is reused
        from tasks.catalogue_map.store import MapStore
        from tasks.storage.snapshots import SnapshotTable

        snapshot = SnapshotTable(str(workdir / "snapshot"))
        store = MapStore(str(workdir / "map"))
    else:
        snapshot, store, _, _, _ = write_snapshot(workdir, args.files)
        update_map(snapshot, store, "map-bench")
    settings = Settings(
        data_dir=workdir / "data",
        snapshot_uri=snapshot.uri,
        map_uri=store.uri,
        checkpoint_path=write_random_checkpoint(workdir / "random-cnn14.pth"),
    )
    url, stop = _serve(settings)
    try:
        measured = measure(url, args.repeats, args.screenshot)
    finally:
        stop()
    results = {"machine": machine(), "browser": "Debian chromium, headless", "files": args.files,
               **measured}  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
