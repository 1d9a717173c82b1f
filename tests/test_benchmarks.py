"""Every benchmark touched by the embedding path runs in its smoke mode, so none can rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import anomaly_eval, file_vector


@pytest.fixture
def shared_prefect_api(prefect_server: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The session's Prefect test server, in the environment: benchmarks whose runs happen in
    child processes use it instead of starting a server each."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())


def test_file_vector_benchmark_smoke(checkpoint: Path) -> None:
    results = file_vector.main(["--smoke", "--checkpoint", str(checkpoint)])
    for figures in results["sets"].values():
        for way in ("mean_of_windows", "whole_file_pooling"):
            assert all(0.0 <= value <= 1.0 for value in figures[way].values())


def test_anomaly_benchmark_smoke(checkpoint: Path) -> None:
    results = anomaly_eval.main(["--smoke", "--checkpoint", str(checkpoint)])
    ways = {cell["windows"] for cell in results["cells"]}
    assert {"pooled", "separate-1s"} <= ways
    assert all(0.0 <= cell["roc_auc"] <= 1.0 for cell in results["cells"])


def test_throughput_clip_lengths_smoke(checkpoint: Path, tmp_path: Path) -> None:
    from benchmarks import throughput

    found = throughput.main(
        ["--smoke", "--checkpoint", str(checkpoint), "--workdir", str(tmp_path), "--device", "cpu"]
    )
    assert set(found["clips_per_s"]) == {"1", "3"} and all(
        v > 0 for v in found["clips_per_s"].values()
    )


def test_serve_load_benchmark_smoke(checkpoint: Path, tmp_path: Path) -> None:
    from benchmarks import serve_load

    found = serve_load.main(
        ["--smoke", "--checkpoint", str(checkpoint), "--workdir", str(tmp_path)]
    )
    summary = found["summary"]
    assert summary["alive_at_end"] and summary["server_errors"] == 0
    (run,) = found["runs"]
    assert run["baseline"]["normal_queries"] > 0 and run["hostile"]["normal_queries"] > 0
    hostile = run["hostile"]["statuses"]["hostile"]
    assert sum(count for status, count in hostile.items() if 400 <= status < 500) > 0


def test_search_latency_smoke() -> None:
    from benchmarks import search_latency

    found = search_latency.main(["--smoke"])["sizes"][1000]
    assert found["flat"]["recall_at_10"] == 1.0 and found["product"]["recall_at_10"] > 0.5


@pytest.mark.usefixtures("shared_prefect_api")
def test_memory_benchmark_smoke() -> None:
    from benchmarks import memory

    found = memory.main(["--smoke"])
    assert [run["embedded"] for run in found["runs"]] == [20, 40]


@pytest.mark.usefixtures("shared_prefect_api")
def test_long_file_benchmark_smoke(checkpoint: Path) -> None:
    from benchmarks import long_file

    found = long_file.main(["--smoke", "--checkpoint", str(checkpoint)])
    assert found["segments"]["streamed"] == found["segments"]["whole"] > 0
    assert found["segment_cosine_min"] > 0.99


def test_engine_candidates_smoke(checkpoint: Path) -> None:
    from benchmarks import engine_candidates

    found = engine_candidates.main(["--smoke", "--checkpoint", str(checkpoint)])
    assert found["onnxruntime_fp32"]["clips_per_s"] > 0
    assert 0.5 < found["onnxruntime_dynamic_int8"]["min_cosine"] <= 1.0 + 1e-6


def test_classify_cost_smoke(checkpoint: Path, tmp_path: Path) -> None:
    from benchmarks import classify_cost

    found = classify_cost.main(
        ["--smoke", "--checkpoint", str(checkpoint), "--workdir", str(tmp_path)]
    )
    assert found["quality"] and found["cost"]


@pytest.mark.usefixtures("shared_prefect_api")
def test_data_path_smoke(tmp_path: Path) -> None:
    from benchmarks import data_path

    found = data_path.main(["--smoke", "--workdir", str(tmp_path)])
    assert [run["files"] for run in found["memory"]["runs"]] == [200, 400]


@pytest.mark.usefixtures("shared_prefect_api")
def test_scan_cost_smoke(checkpoint: Path) -> None:
    from benchmarks import scan_cost

    found = scan_cost.main(["--smoke", "--checkpoint", str(checkpoint)])
    first, later = found["scans"]
    assert first["clips_scored"] == later["clips_scored"] == 2
    assert later["model_calls"] == 0  # scans read stored segments: no forward pass


@pytest.mark.usefixtures("shared_prefect_api")
def test_serve_latency_smoke(checkpoint: Path) -> None:
    from benchmarks import serve_latency

    found = serve_latency.main(["--smoke", "--checkpoint", str(checkpoint)])
    assert found["sequential"]["queries"] == 3 and found["concurrent"]["errors"] == 0


def test_gpu_variants_smoke_on_the_cpu(tmp_path: Path, checkpoint: Path) -> None:
    from benchmarks import gpu_variants

    found = gpu_variants.main(
        ["--smoke", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "v.json")]
    )
    assert found["variants"]["fp32"]["min_cosine_vs_fp32"] > 0.9999
    assert found["fastest"] in found["variants"]


def test_host_path_smoke_on_the_cpu(tmp_path: Path) -> None:
    from benchmarks import host_path

    found = host_path.main(
        ["--smoke", "--workdir", str(tmp_path), "--out", str(tmp_path / "host.json")]
    )
    assert all(found[name]["clips_per_s"] > 0 for name in ("device", "host"))


def test_azure_search_recall_smoke_against_the_test_double(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks import azure_search_recall
    from tests.search_emulator import SearchEmulator

    emulator = SearchEmulator()
    monkeypatch.setenv("AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT", emulator.start())
    monkeypatch.setenv("AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY", emulator.api_key)
    try:
        (found,) = azure_search_recall.main(["--smoke"])
    finally:
        emulator.stop()
    assert found["rows"] == 300 and found["recall_at_10"] == 1.0  # the double searches exactly


def test_spectrogram_cost_smoke() -> None:
    from benchmarks import spectrogram_cost

    runs = spectrogram_cost.main(["--smoke"])["runs"]
    assert [run["file"] for run in runs] == ["engine-2s.wav", "engine-2s.ogg"]
    assert all(run["payload_bytes"] > 0 and run["audio_seconds"] == 2.0 for run in runs)


@pytest.mark.usefixtures("shared_prefect_api")
def test_duplicates_benchmark_smoke(tmp_path: Path) -> None:
    import os

    from benchmarks import duplicates

    before = {k: v for k, v in os.environ.items() if k.startswith("AUDIO_EMBEDDINGS_")}
    found = duplicates.main(["--smoke", "--workdir", str(tmp_path)])
    assert {k: v for k, v in os.environ.items() if k.startswith("AUDIO_EMBEDDINGS_")} == before
    assert found["files"] == 40 + 3 * 4 and found["planted_copies"] == 12
    assert {run["threshold"] for run in found["runs"]} == {0.99, 0.9999}


def test_map_projection_smoke(tmp_path: Path) -> None:
    from benchmarks import map_projection

    found = map_projection.main(["--smoke", "--workdir", str(tmp_path)])
    methods = {(row["method"], row["placement"]) for row in found["compared"]}
    assert {("pca", "nearest fitted points"), ("tsne", "nearest fitted points")} <= methods
    assert ("tsne", "openTSNE transform") in methods
    kept = found["kept_up"]
    assert kept["files"] == 1_500 and kept["fit_sample"] == 1_500
    assert len(kept["one_new_file_seconds"]) == 2


def test_map_first_draw_smoke(tmp_path: Path) -> None:
    import os
    import shutil

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        message = "Debian's chromium and chromium-driver are not installed"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from benchmarks import map_first_draw

    found = map_first_draw.main(["--smoke", "--workdir", str(tmp_path)])
    (run,) = found["runs"]
    assert run["points"] == run["pointsDrawn"] == 1_000 and run["firstDrawMs"] > 0


def test_query_by_examples_smoke() -> None:
    from benchmarks import query_by_examples

    found = query_by_examples.main(["--smoke"])["precision_at_10_by_noise"]
    assert set(found) == {"1.5", "3.0"}
    assert {"one example", "rank fusion", "mean, w=0.25"} <= set(found["1.5"])
    assert all(0.0 <= value <= 1.0 for level in found.values() for value in level.values())


def test_labelling_loop_smoke() -> None:
    from benchmarks import labelling_loop

    found = labelling_loop.main(["--smoke"])
    assert found["labels"] == [30, 40, 50, 60]
    queue, random = found["macro_f1_mean"]["queue"], found["macro_f1_mean"]["random"]
    assert len(queue) == len(random) == 4 and queue[0] == random[0]  # the same start
