# syntax=docker/dockerfile:1.7
# The Kirana application image: runs the API (`kirana serve`), the workers
# (`python -m kirana.workers`) and `kirana db` for the operator's backup and migration Jobs.

FROM python:3.11.14-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY api/pyproject.toml api/pyproject.toml
COPY workers/pyproject.toml workers/pyproject.toml
COPY operator/pyproject.toml operator/pyproject.toml
COPY api/src api/src
COPY workers/src workers/src
COPY operator/src operator/src
RUN uv venv /opt/kirana \
 && uv export --frozen --no-dev --no-emit-workspace --package kirana-workers -o /tmp/requirements.txt \
 && VIRTUAL_ENV=/opt/kirana uv pip install --no-deps -r /tmp/requirements.txt \
 && VIRTUAL_ENV=/opt/kirana uv pip install --no-deps ./api ./workers

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="kirana-api" \
      org.opencontainers.image.source="https://kirana.dev"
RUN groupadd --system --gid 10001 kirana \
 && useradd --system --uid 10001 --gid kirana --home-dir /app --shell /usr/sbin/nologin kirana
COPY --from=build /opt/kirana /opt/kirana
COPY migrations /app/migrations
ENV PATH=/opt/kirana/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    KIRANA_MIGRATIONS_DIR=/app/migrations \
    KIRANA_HOST=0.0.0.0 \
    KIRANA_DATA_DIR=/tmp/kirana \
    PROMETHEUS_MULTIPROC_DIR=/tmp/kirana/metrics
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK NONE
ENTRYPOINT ["kirana"]
CMD ["serve"]
