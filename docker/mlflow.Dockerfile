# syntax=docker/dockerfile:1
# MLflow tracking server with the PostgreSQL driver (the official mlflow image has none).
FROM python:3.11-slim-bookworm
ARG MLFLOW_VERSION=3.17.2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install "mlflow==${MLFLOW_VERSION}" psycopg2-binary
EXPOSE 5000
