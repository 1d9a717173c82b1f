"""Anomaly scans for predictive maintenance: k-NN scores and calibrated thresholds (scoring), one
scan's plan, embeddings and scores (scan), the Delta tables of results and calibrations (store),
and detection quality on labelled folders (evaluate)."""
