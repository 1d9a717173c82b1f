"""The vector index, a derived view of one snapshot version: the interface every backend keeps
(interface), search filters in each backend's query language (filters), bringing an index up to a
snapshot (refresh), and the backends: LanceDB in a local folder (lancedb_index) and Azure AI
Search (azure_search, with its index definition in azure_search_schema)."""
