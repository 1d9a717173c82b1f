"""The Prefect tasks of each flow, one module per flow (``model`` holds the checkpoint step that
every flow running the model starts with). Each task body is a few lines around the plain
functions of the other packages: the DAG reads here and in flows/, the logic lives elsewhere."""
