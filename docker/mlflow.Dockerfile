# syntax=docker/dockerfile:1
# MLflow tracking server with the PostgreSQL driver (psycopg 3: SQLAlchemy 2.1 reads postgresql:// with it)
# and the basic-auth app (mlflow[auth]); the official mlflow image has neither.
FROM python:3.11-slim-bookworm
ARG MLFLOW_VERSION=3.17.2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install "mlflow[auth]==${MLFLOW_VERSION}" "psycopg[binary]>=3.1"
EXPOSE 5000
