# syntax=docker/dockerfile:1
#
# sklearn-predictor: KServe custom predictor for scikit-learn models.
#
#   podman build -t sklearn-predictor .            (or docker build)
#   podman build --build-arg BASE_IMAGE=... .      (any Debian-like image with python3 + venv)
#
# Two stages. The build stage creates a virtualenv in /opt/venv from the pinned
# requirements.lock and installs the package into it; the final stage copies only
# that virtualenv onto a fresh base: no compilers, no pip cache, no sources.
# The image runs as numeric uid 1000 with a read-only root filesystem: anything
# written at run time goes to /tmp (mount an emptyDir there on Kubernetes).

ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build

# pip inside the build trusts the system CA bundle (mounted from the host when
# building on a base without ca-certificates).
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python3 -m venv /opt/venv

# Dependencies first (own layer, cached until requirements.lock changes).
COPY requirements.lock /src/requirements.lock
RUN /opt/venv/bin/pip install --no-deps --only-binary=:all: -r /src/requirements.lock

# Then the package itself, without touching the pinned dependency set;
# `pip check` fails the build if requirements.lock misses a dependency.
# The context is an allow-list (.dockerignore): pyproject.toml, README.md, predictor/.
COPY . /src/
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation /src \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# ---------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS final

LABEL org.opencontainers.image.title="sklearn-predictor" \
      org.opencontainers.image.description="KServe custom predictor for scikit-learn models (V1 + V2 REST and gRPC)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Numeric uid/gid 1000 (KServe runtimes set runAsNonRoot, which refuses a
# named USER); the passwd entry only gives the uid a name and a HOME.
RUN groupadd --gid 1000 predictor \
 && useradd --uid 1000 --gid 1000 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin predictor \
 && mkdir -p /mnt/models \
 && chmod 0755 /mnt/models

COPY --from=build /opt/venv /opt/venv

# Read-only root filesystem friendly: HOME and TMPDIR are /tmp, no .pyc writes,
# unbuffered logs to stdout.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    HOME=/tmp \
    TMPDIR=/tmp \
    JOBLIB_TEMP_FOLDER=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PREDICTOR_MODEL_DIR=/mnt/models \
    PREDICTOR_HTTP_PORT=8080 \
    PREDICTOR_GRPC_PORT=8081

WORKDIR /tmp
USER 1000:1000
EXPOSE 8080 8081

# Kubernetes uses the probes in the manifests; this is for plain container runs.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v2/health/live' % os.environ.get('PREDICTOR_HTTP_PORT', '8080'), timeout=2)"]

ENTRYPOINT ["/opt/venv/bin/python", "-m", "predictor"]
CMD []
