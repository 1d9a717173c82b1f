"""Audio in: decode any supported file (decode), cut it into the model's windows (windows),
resample and window on the model's device (device), and the synthetic sounds of the demo and
the tests (samples)."""
