# syntax=docker/dockerfile:1.7
# The Kirana operator image: kopf reconciling ShopRelease resources.

FROM python:3.11.14-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY operator/pyproject.toml operator/pyproject.toml
COPY operator/src operator/src
RUN uv venv /opt/kirana-operator \
 && uv export --frozen --no-dev --no-emit-workspace --package kirana-operator -o /tmp/requirements.txt \
 && VIRTUAL_ENV=/opt/kirana-operator uv pip install --no-deps -r /tmp/requirements.txt \
 && VIRTUAL_ENV=/opt/kirana-operator uv pip install --no-deps ./operator

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="kirana-operator"
RUN groupadd --system --gid 10001 kirana \
 && useradd --system --uid 10001 --gid kirana --no-create-home --shell /usr/sbin/nologin kirana
COPY --from=build /opt/kirana-operator /opt/kirana-operator
ENV PATH=/opt/kirana-operator/bin:$PATH PYTHONUNBUFFERED=1 KIRANA_OPERATOR_METRICS_PORT=8080
USER 10001:10001
# 8080: Prometheus metrics (kirana_operator_*); 8081: kopf's liveness endpoint.
EXPOSE 8080 8081
# Health is the kubelet's job here: the chart's liveness probe calls kopf's /healthz.
HEALTHCHECK NONE
ENTRYPOINT ["kopf", "run", "--all-namespaces", "--liveness=http://0.0.0.0:8081/healthz", "-m", "kirana.operator.handlers"]
