"""Classify by example: label sets (a few hundred labelled clips), classifiers trained on their
snapshot embeddings, and predictions for the whole catalogue with calibrated confidence."""
