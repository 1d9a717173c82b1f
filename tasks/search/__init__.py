"""Search as users ask it: what a query names and its vector (query), and the catalogue files
a query or a result refers to (catalogue). The HTTP service on top is tasks.serve."""
