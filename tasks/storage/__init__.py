"""Where data lives: audio sources (local folder, Blob container), the Azure Blob connection,
and the Delta tables (snapshots, quarantine) with their shared read path."""
