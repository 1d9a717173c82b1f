"""The work of the pipeline: plain, typed functions, with thin Prefect task wrappers."""
