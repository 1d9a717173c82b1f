"""``python -m flows.cli``: the same command as ``audio-embeddings``."""

from flows.cli import app

app()
