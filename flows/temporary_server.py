"""The Prefect API a command talks to: the configured server, or a temporary one that cannot
outlive the command.

Without ``PREFECT_API_URL``, Prefect starts a temporary server (a uvicorn child process) and
stops it at exit; a command killed outright (SIGKILL, an evicted pod, a closed terminal) used to
leave that child running, still holding its port and ~230 MB an hour later. Here the child is
started with ``PR_SET_PDEATHSIG``: the kernel sends it SIGTERM the moment the command dies,
however it dies. (Linux only; elsewhere Prefect's own stop-at-exit applies.)

The temporary server is kept quiet and safe to start from several commands at once: its
analytics are off (on an offline machine its telemetry service logged an ERROR on every run,
and its database insert could fail with "database is locked" and a traceback when two servers
shared the database), and starting it (migrations, first writes) holds a file lock in
``PREFECT_HOME``, so two commands never start theirs on the same database at the same time.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel for SIGTERM when the parent dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _uvicorn_bound_to_this_process(port: int) -> subprocess.Popen:
    """Prefect's temporary server, launched as Prefect launches it, but bound to our life."""
    import prefect

    return subprocess.Popen(
        args=[
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(prefect.__module_path__.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env={
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
            # set last: a temporary server sends no analytics, whatever the environment says
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        },
        preexec_fn=_die_with_parent,
    )


@contextmanager
def _starting_alone() -> Iterator[None]:
    """Hold the lock that serialises temporary-server starts on this ``PREFECT_HOME``."""
    home = Path(get_current_settings().home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "audio-embeddings-server-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def prefect_api() -> Iterator[None]:
    """Run the block against the configured Prefect API, or a temporary server bound to this
    process (started here, in the main thread: the death signal follows the starting thread;
    it stops when the process exits, or dies with it)."""
    if PREFECT_API_URL.value():
        yield
        return
    # Imported here: the server code takes a second to import and most runs never need it.
    from prefect.server.api.server import SubprocessASGIServer

    class BoundServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            return _uvicorn_bound_to_this_process(self.port)

    server = BoundServer(_free_port())
    # start() also registers the stop at exit, as for Prefect's own temporary server: exit
    # handlers run last-registered first, so the log and event workers (started later, during
    # the run) drain into a live server before it stops.
    with _starting_alone():
        server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield
