#!/usr/bin/env bash
# What one lent GPU machine runs, in one call: the CUDA tests, the throughput benchmark in bf16,
# and the torch forward-pass variants. Writes its logs and JSON under $OUT; prints a short
# summary last.
#
# That machine's image has Python 3.12 with torch (CUDA), numpy, pandas, pyarrow, scipy, numba,
# scikit-learn and pytest, and no package registry. What this project needs beyond them travels
# as cp312 manylinux wheels in .whl/ (git-ignored; under 64 MiB with the tree), made here with
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl \
#     $(grep -iE '^(annotated-types|arro3-core|audioread|azure-core|azure-storage-blob|cffi|\
# cryptography|decorator|deltalake|deprecated|isodate|julius|librosa|panns-inference|platformdirs|\
# pooch|pycparser|pydantic|pydantic-core|pydantic-settings|python-dotenv|pytz|soundfile|soxr|\
# tenacity|torchlibrosa|typing.extensions|typing-inspection)==' constraints.txt)
# (the deltalake wheel re-zipped at -9 to fit).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/audio-embeddings-device}
mkdir -p "$OUT"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
python3 -c "import torch, onnxruntime as ort; print('torch', torch.__version__, 'cudnn', \
torch.backends.cudnn.version(), 'onnxruntime', ort.__version__, ort.get_available_providers())" \
    | tee "$OUT/versions.txt"

timeout 150 python3 -m pytest -q -p no:cacheprovider -rs \
    tests/model/test_embedder.py tests/audio/test_device.py > "$OUT/pytest.log" 2>&1
echo "pytest exit $?" >> "$OUT/pytest.log"

timeout 240 python3 benchmarks/throughput.py --clips 2048 --distinct-clips 256 --naive-clips 64 \
    --batch-sizes 128,256 --precision bf16 --seconds-per-point 3 --workers 16 --engines torch \
    --workdir /tmp/bench --out "$OUT/throughput-bf16.json" > "$OUT/throughput.log" 2>&1
echo "throughput exit $?" >> "$OUT/throughput.log"

timeout 150 python3 benchmarks/gpu_variants.py --batch-size 256 --seconds 2 \
    --out "$OUT/gpu-variants.json" > "$OUT/variants.log" 2>&1
echo "variants exit $?" >> "$OUT/variants.log"

echo "=== pytest"; tail -8 "$OUT/pytest.log"
echo "=== throughput"; tail -9 "$OUT/throughput.log"
echo "=== variants"; tail -12 "$OUT/variants.log"
