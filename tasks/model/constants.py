"""What Cnn14 is, as numbers: its input rate, output sizes, front end and official checkpoint.

No torch here: code that only handles embeddings (tables, indexes, sensors) imports these
without loading a model runtime.
"""

from __future__ import annotations

MODEL_NAME = "Cnn14"
#: How stored vectors are computed from the model (tasks.audio.pieces, tasks.model.file_vectors):
#: rows of another method are embedded again by the next ingest. Change it when that changes.
EMBEDDING_METHOD = "whole-file-frames-mirrored-edges"
#: Cnn14's input rate (Hz); every file is resampled to it.
MODEL_SAMPLE_RATE = 32_000
#: Length of an embedding (ReLU(fc1), never negative).
EMBEDDING_SIZE = 2048
#: AudioSet classes of the clip-wise output.
NUM_CLASSES = 527
# Cnn14's front end, as trained (PANNs paper): STFT window and hop (samples), mel bins, band (Hz).
WINDOW_SIZE, HOP_SIZE, MEL_BINS, FMIN, FMAX = 1024, 320, 64, 50, 14_000
#: Forward-pass cost of one 10 s clip (320,000 samples), GFLOP: torch's FlopCounterMode counts
#: 42.25 (21.1 G multiply-adds; the PANNs paper's "42.2 G multi-adds" counts two per MAC).
GFLOP_PER_10S_CLIP = 42.25

CHECKPOINT_FILENAME = "Cnn14_mAP=0.431.pth"
OFFICIAL_URL = "https://zenodo.org/record/3987831/files/Cnn14_mAP%3D0.431.pth?download=1"
# Published by third parties for the Zenodo file; verified after every download.
OFFICIAL_SHA256 = "0dc499e40e9761ef5ea061ffc77697697f277f6a960894903df3ada000e34b31"
