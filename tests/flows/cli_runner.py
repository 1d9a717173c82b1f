"""A Typer test runner that also checks what a successful command printed."""

from __future__ import annotations

from typer.testing import CliRunner


class QuietCliRunner(CliRunner):
    """``invoke``, and when the command succeeded, fail on any traceback or ERROR line in its
    output: a command either works quietly or fails with one ``error:`` line."""

    def invoke(self, *args, **kwargs):
        result = super().invoke(*args, **kwargs)
        if result.exit_code == 0:
            assert "Traceback" not in result.output, result.output
            assert not [line for line in result.output.splitlines() if "ERROR" in line], (
                result.output
            )
        return result
