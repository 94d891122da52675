# syntax=docker/dockerfile:1
#
# cube-operator container image.
#
#   docker build -t cube-operator:0.1.0 .
#
# Stage 1 builds a wheel of the project (from pyproject.toml) and installs it with its
# pinned dependencies into a self-contained virtualenv at /opt/venv. Only
# src/cube_operator goes into the wheel: the test bed next to it in src/ (kubeapi, the
# API emulator; cloudsim, the provider simulators) and the `sandbox` extra they need
# (jsonschema) stay out of the image.
# Stage 2 copies only that virtualenv onto python:3.11-slim and runs it as uid 65532.
# The image works with a read-only root filesystem: nothing is written outside /tmp
# (mount an emptyDir there; the Helm chart does).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip build
# Dependencies first (read from pyproject.toml, where they are pinned), so that a
# change to src/ does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
 && /opt/venv/bin/pip install -r /tmp/requirements.txt
COPY README.md ./
# The operator package only, not src/kubeapi or src/cloudsim (the test bed).
COPY src/cube_operator ./src/cube_operator
RUN /opt/venv/bin/python -m build --wheel --outdir /dist .
RUN /opt/venv/bin/pip install --no-deps /dist/*.whl \
 && /opt/venv/bin/pip uninstall -y build pip \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="cube-operator" \
      org.opencontainers.image.description="Kubernetes operator exposing small-cloud VMs (Krova, ...) as custom resources" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/cube-operator/cube-operator" \
      org.opencontainers.image.documentation="https://github.com/cube-operator/cube-operator/blob/main/docs/operations.md" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

COPY --from=builder /opt/venv /opt/venv

# A fixed non-root user (distroless "nonroot" id) that owns nothing in the image.
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin nonroot
USER 65532:65532
WORKDIR /tmp

# 8080 liveness (/healthz), 9090 Prometheus metrics (/metrics), 8443 provider webhooks.
EXPOSE 8080 9090 8443

ENTRYPOINT ["cube-operator", "run"]
