"""The Cnn14 model: what it is (constants, labels; no torch), where its weights come from
(checkpoint), how it is built and run (cnn14), and the embedder the pipeline calls (embedder)."""
