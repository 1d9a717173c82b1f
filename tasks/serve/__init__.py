"""``audio-embeddings serve``: the search service without HTTP (service), micro-batching of
concurrent queries (batching), who may call it (auth), byte ranges for players (ranges), the
FastAPI routes (app) and the page they serve (page/)."""
