"""Safe by default: loopback unless secured, API key and Entra ID tokens, upload limits."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tasks.serve.app import create_app
from tasks.serve.auth import SESSION_COOKIE, Authenticator, ServiceNotSecuredError
from tasks.settings import ServeSettings
from tests.serve.conftest import Served, running

A440 = "tones/a440.wav"
TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "api://audio-embeddings"


@contextmanager
def client(served: Served, **settings) -> Iterator[httpx.Client]:
    """An HTTP client of the served catalogue's service, run with other settings."""
    serve_settings = ServeSettings(**settings)
    app = create_app(served.service, Authenticator(serve_settings), serve_settings)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.org"])
def test_beyond_loopback_it_refuses_to_start_without_authentication(host: str) -> None:
    with pytest.raises(ServiceNotSecuredError, match="AUDIO_EMBEDDINGS_SERVE_API_KEY"):
        Authenticator(ServeSettings(serve_host=host))
    assert Authenticator(ServeSettings(serve_host=host, serve_api_key="k")).required
    assert not Authenticator(ServeSettings(serve_host="127.0.0.1")).required
    assert not Authenticator(ServeSettings(serve_host="::1")).required


def test_the_command_refuses_an_open_public_bind_before_loading_anything() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "serve", "--host", "0.0.0.0"],
        cwd=Path(__file__).parents[2],
        env={k: v for k, v in os.environ.items() if not k.startswith("AUDIO_EMBEDDINGS_SERVE")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refusing to listen on 0.0.0.0" in " ".join(done.stdout.split())
    assert "Traceback" not in done.stdout + done.stderr


def test_with_an_api_key_every_api_route_needs_it_and_the_page_logs_in(served: Served) -> None:
    key = "correct horse battery staple"
    with client(served, serve_api_key=key) as app:
        item = app.get("/api/search", params={"path": A440}, headers={"X-API-Key": key})
        assert item.status_code == 200
        audio_url = item.json()["hits"][0]["audio_url"]
        for path in (
            "/api/search?path=" + A440,
            audio_url,
            "/api/anomalies",
            "/api/tags",
            "/api/labels",
        ):
            assert app.get(path).status_code == 401, path
            assert app.get(path, headers={"X-API-Key": "wrong"}).status_code == 401, path
        assert app.get("/healthz").status_code == 200  # probes carry no key
        assert app.post("/api/login", json={"api_key": "wrong"}).status_code == 401
        login = app.post("/api/login", json={"api_key": key})
        assert login.status_code == 204
        cookie = login.cookies[SESSION_COOKIE]
        app.cookies.set(SESSION_COOKIE, cookie)  # httpx keeps no cookie for a bare IP host
        assert key not in cookie and key not in str(login.headers)
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        assert app.get(audio_url).status_code == 200  # the session cookie, as a player sends it


@pytest.fixture
def entra_keys() -> Iterator[tuple[rsa.RSAPrivateKey, str]]:
    """A signing key and a loopback JWKS endpoint publishing its public half (the tenant's
    discovery/v2.0/keys)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "key-1", "use": "sig", "alg": "RS256"}]})

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield private, f"http://127.0.0.1:{server.server_address[1]}/keys"
    server.shutdown()


def token(private, **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode(payload, private, algorithm="RS256", headers={"kid": "key-1"})


def test_entra_id_tokens_of_the_tenant_and_audience_pass_others_do_not(
    served: Served, entra_keys
) -> None:
    private, jwks_url = entra_keys
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with client(
        served,
        serve_host="0.0.0.0",
        serve_entra_tenant_id=TENANT,
        serve_entra_audience=AUDIENCE,
        serve_entra_jwks_url=jwks_url,
    ) as app:

        def status(bearer: str) -> int:
            headers = {"Authorization": f"Bearer {bearer}"}
            return app.get("/api/anomalies", headers=headers).status_code

        assert status(token(private)) == 200
        v1 = token(private, iss=f"https://sts.windows.net/{TENANT}/")
        assert status(v1) == 200
        assert status(token(private, aud="api://someone-else")) == 401
        assert status(token(private, iss="https://login.microsoftonline.com/other/v2.0")) == 401
        assert status(token(private, exp=int(time.time()) - 60)) == 401
        assert status(token(stranger)) == 401  # signed by a key the tenant never published
        assert status("not-a-jwt") == 401
        assert app.get("/api/anomalies").status_code == 401


def test_oversized_uploads_are_refused_before_they_are_decoded(served: Served) -> None:
    limit = 50_000
    small = (served.catalogue / A440).read_bytes()[:40_000]
    large = (served.catalogue / "machines/ticker.wav").read_bytes()
    assert len(large) > limit + 64 * 1024
    with client(served, serve_max_upload_bytes=limit) as app:
        refused = app.post("/api/search", files={"file": ("big.wav", large)})
        assert refused.status_code == 413 and "50,000" in refused.json()["detail"]

        def chunked():  # no Content-Length: counted as it arrives
            boundary = b"--b\r\n"
            yield (
                boundary + b'Content-Disposition: form-data; name="file"; filename="x.wav"\r\n\r\n'
            )
            for start in range(0, len(large), 8192):
                yield large[start : start + 8192]
            yield b"\r\n--b--\r\n"

        streamed = app.post(
            "/api/search",
            content=chunked(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413
        # under the limit it reaches the decoder, which checks it like any input file
        truncated = app.post("/api/search", files={"file": ("cut.wav", small)})
        assert truncated.status_code in (200, 422)
        if truncated.status_code == 422:
            assert "cut.wav" in truncated.json()["detail"]
