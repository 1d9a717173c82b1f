"""A Typer test runner that also checks what a successful command printed."""

from __future__ import annotations

import re

from typer.testing import CliRunner

#: Python's report of a log record written to a stream the runner already closed: Prefect's
#: console handler keeps the captured stream of an earlier ``invoke`` in the same process. An
#: artifact of running commands in-process, never of a command run from a shell.
_CLOSED_STREAM_LOGGING_ERROR = re.compile(
    r"--- Logging error ---\n.*?ValueError: I/O operation on closed file\..*?\nArguments: .*?\n",
    re.DOTALL,
)


class QuietCliRunner(CliRunner):
    """``invoke``, and when the command succeeded, fail on any traceback or ERROR line in its
    output: a command either works quietly or fails with one ``error:`` line."""

    def invoke(self, *args, **kwargs):
        result = super().invoke(*args, **kwargs)
        if result.exit_code == 0:
            output = _CLOSED_STREAM_LOGGING_ERROR.sub("", result.output)
            assert "Traceback" not in output, output
            assert not [line for line in output.splitlines() if "ERROR" in line], output
        return result
