# The image infra/serve.bicep runs: this project on CPU torch, `audio-embeddings serve` as the
# command. Build from the repository root:
#   docker build -f infra/serve.Dockerfile -t <registry>/audio-embeddings:<tag> .
# The Cnn14 checkpoint is not baked in: the first start downloads it (AUDIO_EMBEDDINGS_CHECKPOINT_URL
# for a mirror) into the panns_data folder, or mount one and set AUDIO_EMBEDDINGS_CHECKPOINT_PATH.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY flows flows
COPY tasks tasks
# torch first, CPU build, pinned: nothing else may pull the multi-GB CUDA build
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install --no-cache-dir -c constraints.txt .
RUN useradd --create-home --uid 1000 service
USER service
ENV AUDIO_EMBEDDINGS_PANNS_DATA_DIR=/home/service/panns_data
EXPOSE 8000
ENTRYPOINT ["audio-embeddings"]
CMD ["serve", "--host", "0.0.0.0"]
