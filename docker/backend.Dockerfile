# The web image: FastAPI + the torch-free part of the library (configs, presets).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pinwheel ./pinwheel
COPY backend ./backend
COPY worker ./worker
COPY frontend ./frontend
RUN pip install --no-cache-dir ".[postgres]"
ENV PINWHEEL_ARTIFACTS_DIR=/data/artifacts
EXPOSE 8000
CMD ["uvicorn", "backend.app.asgi:app", "--host", "0.0.0.0", "--port", "8000"]
