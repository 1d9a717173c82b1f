"""Uploads are checked before the app reads them: too large (by Content-Length, or as a chunked
body arrives) is 413, too slow is 408, and the request's deadline starts when the body does."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from fastapi import HTTPException, UploadFile
from fastapi.responses import JSONResponse

from tasks.serve.admission import Deadline

#: Multipart framing and form fields on top of the file itself (bytes).
FORM_OVERHEAD = 64 * 1024


class UploadGuard:
    """For requests to ``path`` (uploads): answers 413 to a body past ``file_limit`` bytes (plus
    the form's framing), by its Content-Length or, for a chunked body, as it arrives, so an
    oversized upload is never spooled whole; and 408 to a body still arriving after ``seconds``
    (a slow or stalled client holds no more than a connection until then). Sets the request's
    deadline, which the search then keeps to."""

    def __init__(
        self, app, file_limit: int, seconds: float, path: str, reject: Callable[[str], None]
    ) -> None:
        self.app, self.file_limit, self.seconds, self.path = app, file_limit, seconds, path
        self.limit = file_limit + FORM_OVERHEAD
        self.reject = reject

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        deadline = Deadline.after(self.seconds)
        scope.setdefault("state", {})["deadline"] = deadline
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, 413, self._too_large())
            return
        received, answered = 0, False

        async def guarded():
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            with anyio.move_on_after(deadline.remaining()) as waited:
                message = await receive()
            if waited.cancelled_caught:
                await self._refuse(
                    send,
                    408,
                    f"the upload did not arrive within {self.seconds:g} s "
                    "(AUDIO_EMBEDDINGS_SERVE_REQUEST_TIMEOUT_SECONDS)",
                )
                answered = True
                return {"type": "http.disconnect"}
            received += len(message.get("body", b""))
            if received > self.limit:  # answer now; the app sees the client gone
                await self._refuse(send, 413, self._too_large())
                answered = True
                return {"type": "http.disconnect"}
            return message

        async def unless_answered(message) -> None:
            if not answered:
                await send(message)

        try:
            await self.app(scope, guarded, unless_answered)
        except Exception:
            if not answered:  # the app's own failure; after our answer, only the lost body's
                raise

    def _too_large(self) -> str:
        return f"the upload is over the limit of {self.file_limit:,} bytes"

    async def _refuse(self, send, status: int, detail: str) -> None:
        self.reject("upload_too_large" if status == 413 else "upload_timeout")
        response = JSONResponse({"detail": detail}, status_code=status)
        await response({"type": "http"}, None, send)


async def read_limited(upload: UploadFile, limit: int) -> bytes:
    """The upload's bytes; 413 as soon as it passes ``limit``."""
    chunks, total = [], 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"the upload is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
