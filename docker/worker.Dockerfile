# The GPU worker image: CUDA PyTorch + the science library. One container per GPU.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pinwheel ./pinwheel
COPY backend ./backend
COPY worker ./worker
RUN pip install --no-cache-dir ".[worker]"
ENV PINWHEEL_ARTIFACTS_DIR=/data/artifacts
CMD ["celery", "-A", "worker.celery_app:app", "worker", "--pool=solo", "--loglevel=INFO"]
