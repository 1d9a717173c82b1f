"""The service on a catalogue in Blob Storage (Azurite): audio streamed from the blob with byte
ranges, and queries by blob URL, limited to the configured account."""

from __future__ import annotations

import base64

import httpx
import pytest

from tasks.audio import samples
from tasks.audio.decode import decode_bounded
from tasks.settings import ServeSettings, Settings
from tests.blobs import upload
from tests.serve.conftest import running

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_blob_audio_ranges_and_blob_url_queries(blob_env) -> None:
    from flows.ingest import ingest
    from tasks.model.embedder import load_embedder
    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    container = blob_env
    upload(container, "pumps/p1.wav", samples.engine(3.0, 16_000, rpm=1500), 16_000)
    upload(container, "pumps/p2.flac", samples.engine(3.0, 16_000, rpm=2900, seed=1), 16_000)
    upload(container, "birds/b1.wav", samples.chirp(3.0, 22_050), 22_050)
    ingest(source=f"az://{container.container_name}/")
    settings = Settings()
    service = SearchService(
        settings, load_embedder(settings.model_settings(), settings.audio_limits())
    )
    app = create_app(service, Authenticator(ServeSettings()), ServeSettings())
    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            az = http.get(
                "/api/search", params={"url": f"az://{container.container_name}/pumps/p1.wav"}
            )
            assert az.status_code == 200, az.text
            best = az.json()["hits"][0]
            assert best["path"] == "pumps/p1.wav" and best["score"] == pytest.approx(1, abs=1e-4)
            by_https = http.get("/api/search", params={"url": f"{container.url}/pumps/p1.wav"})
            assert [h["path"] for h in by_https.json()["hits"]] == [
                h["path"] for h in az.json()["hits"]
            ]
            elsewhere = http.get("/api/search", params={"url": "https://evil.example.org/c/x.wav"})
            assert elsewhere.status_code == 404
            assert "only blobs of the configured storage account" in elsewhere.json()["detail"]
            missing = http.get(
                "/api/search", params={"url": f"az://{container.container_name}/none.wav"}
            )
            assert missing.status_code == 404 and "no such blob" in missing.json()["detail"]

            original = container.download_blob("pumps/p1.wav").readall()
            whole = http.get(best["audio_url"])
            assert whole.status_code == 200 and whole.content == original
            part = http.get(best["audio_url"], headers={"Range": "bytes=1000-4999"})
            assert part.status_code == 206 and part.content == original[1000:5000]
            assert part.headers["content-range"] == f"bytes 1000-4999/{len(original)}"
            assert (
                http.get(best["audio_url"], headers={"Range": "bytes=99999999-"}).status_code == 416
            )
            # its spectrogram is drawn from the blob too, the same picture as from its bytes
            from tasks.model.front_end import log_mel_picture

            picture = http.get(f"/api/spectrogram/{best['key']}")
            assert picture.status_code == 200, picture.text
            wanted = log_mel_picture(
                decode_bounded("p1.wav", original, settings.audio_limits(), lambda: None).samples
            )
            assert base64.b64decode(picture.json()["values"]) == wanted.values.tobytes()
            body = whole.text + az.text + picture.text
            assert settings.blob_connection_string.get_secret_value() not in body

            # a blob query is bounded as an upload is: refused from its header
            upload(container, "long/hum.flac", samples.engine(90.0, 8_000), 8_000)
            long = http.get(
                "/api/search", params={"url": f"az://{container.container_name}/long/hum.flac"}
            )
            assert long.status_code == 413, long.text
            assert "AUDIO_EMBEDDINGS_SERVE_MAX_QUERY_SECONDS" in long.json()["detail"]
    finally:
        service.close()
