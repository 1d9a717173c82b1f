"""One ingest run, as plain functions: what to embed (plan), the streaming embed path with
read-ahead and cross-file batches (stream), a shard's files turned into snapshot rows (shard),
and the run's results written to the tables (commit)."""
