"""Work per request is bounded: a query's length (from its header, before decoding), how many
queries the service holds, and each request's time; and what it does is scraped at /metrics."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tasks.audio import samples
from tasks.serve.admission import Admission, Deadline, DeadlineExceededError, ServiceBusyError
from tasks.serve.metrics import ACCESS_LOGGER
from tests.serve.conftest import Served, served_with

A440 = "tones/a440.wav"


@pytest.fixture(scope="module")
def three_hour_ogg() -> bytes:
    """A 3-hour tone as Ogg Vorbis at 8 kHz: about 8 MB, well under the upload limit."""
    return samples.long_tone_file(3 * 3600.0, 8_000, "ogg")


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    """One sample's value from /metrics (0 when the series does not exist yet)."""
    text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_a_query_longer_than_the_limit_is_refused_from_its_header(
    served: Served, three_hour_ogg: bytes
) -> None:
    with served_with(served) as (http, _):
        refused = http.post("/api/search", files={"file": ("hum.ogg", three_hour_ogg)})
        assert refused.status_code == 413, refused.text
        detail = refused.json()["detail"]
        assert "hum.ogg" in detail and "10,800 s" in detail
        assert "AUDIO_EMBEDDINGS_SERVE_MAX_QUERY_SECONDS" in detail and "60 s" in detail
        assert metric(http, "audio_embeddings_rejections_total", reason="too_long") == 1
        assert metric(http, "audio_embeddings_query_decode_seconds_count") == 0


def test_the_limit_is_read_from_the_header_not_found_by_decoding(served: Served) -> None:
    """A WAV whose header promises 3 hours but holds 1 s: a decoder that read first would call
    it truncated; the header check calls it too long, and no audio is read."""
    one_second = samples.encode(samples.tone(1.0, 8_000), 8_000, "wav")
    claims_three_hours = bytearray(one_second)
    data_at = claims_three_hours.index(b"data")
    claimed = 3 * 3600 * 8_000 * 2
    claims_three_hours[data_at + 4 : data_at + 8] = claimed.to_bytes(4, "little")
    with served_with(served) as (http, _):
        refused = http.post("/api/search", files={"file": ("liar.wav", bytes(claims_three_hours))})
        assert refused.status_code == 413 and "10,800 s" in refused.json()["detail"]


def test_the_query_limit_is_a_setting_and_a_stored_vector_needs_no_decoding(
    served: Served,
) -> None:
    with served_with(served, serve_max_query_seconds=2.0) as (http, _):
        data = (served.catalogue / A440).read_bytes()  # 3 s
        upload = http.post("/api/search", files={"file": ("a440.wav", data)})
        assert upload.status_code == 413 and "2 s" in upload.json()["detail"]
        by_path = http.get("/api/search", params={"path": A440})
        assert by_path.status_code == 200 and by_path.json()["hits"][0]["path"] == A440
        assert http.post(
            "/api/search",
            files={"file": ("short.wav", samples.encode(samples.tone(1.5, 8_000), 8_000, "wav"))},
        ).is_success


def test_a_full_service_answers_503_with_retry_after_at_once(served: Served) -> None:
    with served_with(served, serve_max_decodes=1, serve_max_queued=0) as (http, service):
        query = {"file": ("a440.wav", (served.catalogue / A440).read_bytes())}
        with service.admission.admitted():  # the one place is taken
            busy = http.post("/api/search", files=query)
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "1"
            assert "AUDIO_EMBEDDINGS_SERVE_MAX_QUEUED" in busy.json()["detail"]
            # a catalogue query needs no model: it is not held back
            assert http.get("/api/search", params={"path": A440}).status_code == 200
        assert http.post("/api/search", files=query).status_code == 200
        assert metric(http, "audio_embeddings_rejections_total", reason="busy") == 1


def test_a_burst_past_the_line_is_refused_not_piled_up(served: Served) -> None:
    """Eight queries at once into a service that holds two, whose batches wait a second:
    those over the line are refused, the rest answered, and none fails otherwise."""
    with served_with(served, serve_max_decodes=1, serve_max_queued=1, serve_batch_wait_ms=1000) as (
        http,
        _,
    ):
        data = (served.catalogue / A440).read_bytes()
        statuses: list[int] = []
        start = threading.Barrier(8)

        def send() -> None:
            start.wait()
            statuses.append(http.post("/api/search", files={"file": ("q.wav", data)}).status_code)

        threads = [threading.Thread(target=send) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(statuses) <= {200, 503} and 1 <= statuses.count(200) <= 7
        assert metric(http, "audio_embeddings_rejections_total", reason="busy") == statuses.count(
            503
        )
        assert metric(http, "audio_embeddings_queries_in_hand") == 0


def test_past_its_deadline_a_query_gets_504_and_is_dropped_from_its_batch(
    served: Served,
) -> None:
    with served_with(served, serve_request_timeout_seconds=0.3, serve_batch_wait_ms=1000) as (
        http,
        service,
    ):
        data = (served.catalogue / A440).read_bytes()
        late = http.post("/api/search", files={"file": ("a440.wav", data)})
        assert late.status_code == 504, late.text
        assert "AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS" in late.json()["detail"]
        time.sleep(1.5)  # past the batch's wait: it would have run by now
        assert service.batcher.stats.passes == 0  # the query was dropped, not embedded
        assert metric(http, "audio_embeddings_rejections_total", reason="deadline") == 1


def test_an_upload_still_arriving_at_the_deadline_gets_408(served: Served) -> None:
    with served_with(served, serve_request_timeout_seconds=0.5) as (http, _):
        address = urlparse(str(http.base_url))
        with socket.create_connection((address.hostname, address.port), timeout=10) as slow:
            slow.sendall(
                b"POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n"
            )  # ... and nothing more
            answer = _read_response(slow)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS" in answer
        assert http.get("/healthz").status_code == 200
        assert metric(http, "audio_embeddings_rejections_total", reason="upload_timeout") == 1


def test_metrics_move_with_traffic_and_need_the_api_key_off_loopback(served: Served) -> None:
    with served_with(served) as (http, _):
        query = {"file": ("a440.wav", (served.catalogue / A440).read_bytes())}
        for _ in range(3):
            assert http.post("/api/search", files=query).status_code == 200
        assert http.post("/api/search", files={"file": ("x.wav", b"garbage")}).status_code == 422
        route = {"route": "/api/search", "method": "POST"}
        assert metric(http, "audio_embeddings_http_requests_total", **route, status="200") == 3
        assert metric(http, "audio_embeddings_http_requests_total", **route, status="422") == 1
        assert (
            metric(
                http, "audio_embeddings_http_request_duration_seconds_count", route="/api/search"
            )
            == 4
        )
        assert metric(http, "audio_embeddings_query_decode_seconds_count") == 3
        assert metric(http, "audio_embeddings_forward_pass_queries_sum") == 3
        assert metric(http, "audio_embeddings_forward_pass_seconds_sum") > 0
        assert metric(http, "audio_embeddings_rejections_total", reason="not_audio") == 1
        files = len(list(served.catalogue.rglob("*.*")))
        assert metric(http, "audio_embeddings_index_rows", index="files") == files
        assert metric(http, "audio_embeddings_snapshot_version") >= 1
        # a key's route is counted by its template, not one series per key
        key = http.get("/api/search", params={"path": A440}).json()["hits"][0]["key"]
        http.get(f"/api/audio/{key}")
        assert metric(http, "audio_embeddings_http_requests_total", route="/api/audio/{key}") == 1

    secret = "metrics-key"
    with served_with(served, serve_host="0.0.0.0", serve_api_key=secret) as (http, _):
        assert http.get("/metrics").status_code == 401
        scraped = http.get("/metrics", headers={"X-API-Key": secret})
        assert scraped.status_code == 200 and "audio_embeddings_http_requests_total" in scraped.text


def test_json_access_lines_carry_the_request_id_and_never_the_query_string(
    served: Served,
) -> None:
    lines = _Captured()
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addHandler(lines)
    try:
        with served_with(served, serve_access_log="json") as (http, _):
            answer = http.get(
                "/api/search", params={"path": A440}, headers={"X-Request-ID": "trace-42"}
            )
            assert answer.headers["x-request-id"] == "trace-42"
            http.get("/api/search", params={"url": "az://c/x.wav?sig=SECRET-SAS"})
            generated = http.get("/healthz").headers["x-request-id"]
    finally:
        logger.removeHandler(lines)
    logged = [json.loads(line) for line in lines.messages]
    first = next(entry for entry in logged if entry["request_id"] == "trace-42")
    assert first["status"] == 200 and first["route"] == "/api/search"
    assert first["method"] == "GET" and first["duration_ms"] > 0
    assert any(entry["request_id"] == generated for entry in logged) and len(generated) == 32
    assert "SECRET-SAS" not in "".join(lines.messages)


def test_admission_holds_at_most_decodes_plus_queued() -> None:
    admission = Admission(max_decodes=2, max_queued=1)
    with admission.admitted(), admission.admitted(), admission.admitted():
        assert admission.in_hand == 3
        with pytest.raises(ServiceBusyError), admission.admitted():
            pass
        with admission.decode_slot(Deadline.after(1)), admission.decode_slot(Deadline.after(1)):
            assert admission.decoding == 2
            with pytest.raises(DeadlineExceededError), admission.decode_slot(Deadline.after(0.05)):
                pass
    assert admission.in_hand == 0 and admission.decoding == 0
    with admission.admitted():  # places come back
        pass


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _read_response(connection: socket.socket) -> bytes:
    chunks: list[bytes] = []
    try:
        while chunk := connection.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                break
    except TimeoutError:
        pass
    return b"".join(chunks)
