# syntax=docker/dockerfile:1.7
# The load generator: Locust with Kirana's journeys (tests/load), for a master and workers run in
# a cluster next to the shop (charts/kirana-load). Its packages are the `load` group of uv.lock.

FROM python:3.11.14-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY api/pyproject.toml api/pyproject.toml
COPY workers/pyproject.toml workers/pyproject.toml
COPY operator/pyproject.toml operator/pyproject.toml
RUN uv venv /opt/load \
 && uv export --frozen --only-group load --no-emit-workspace -o /tmp/requirements.txt \
 && VIRTUAL_ENV=/opt/load uv pip install --no-deps -r /tmp/requirements.txt

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="kirana-load" \
      org.opencontainers.image.source="https://kirana.dev"
RUN groupadd --system --gid 10001 locust \
 && useradd --system --uid 10001 --gid locust --home-dir /app --shell /usr/sbin/nologin locust
COPY --from=build /opt/load /opt/load
COPY tests/__init__.py /app/tests/__init__.py
COPY tests/load /app/tests/load
ENV PATH=/opt/load/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    KIRANA_LOAD_OUT=/tmp/out
WORKDIR /app
USER 10001:10001
EXPOSE 5557 8089
HEALTHCHECK NONE
ENTRYPOINT ["locust", "-f", "/app/tests/load/locustfile.py"]
CMD ["--help"]
