# caseroute gRPC server image: `docker build -t caseroute .` (docs/deploy.md: running it, the
# volumes, Kubernetes, and how to update the pins below).
#
# Two stages: the build stage compiles durable_rules' C extension (PyPI ships only an sdist)
# into a virtual environment; the runtime stage copies that environment and carries no
# compiler. Dependencies come from requirements.lock (every transitive package, hash-checked).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# Pinned to bookworm's versions (`apt-cache policy gcc libc6-dev` in the base image): a Debian
# point release that replaces one fails this step on purpose; update the pin (docs/deploy.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 libc6-dev=2.36-9+deb12u14 \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/caseroute/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/caseroute
WORKDIR /src
# The dependency layer, from the lock alone, before any source: editing src/ or rulesets/ does
# not rebuild durable_rules. --no-deps: the lock is complete (a test checks it covers
# pyproject.toml), so nothing unpinned can slip in.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# The wheel ships the reference ruleset for caseroute.testing and the published protos beside
# caseroute.v1 (force-include in pyproject.toml).
COPY rulesets ./rulesets
COPY protos ./protos
RUN pip install --no-deps . && pip check

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="caseroute" \
      org.opencontainers.image.description="Rules-based, explainable routing decisions for healthcare enquiries, over gRPC" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="docs/deploy.md"
# MALLOC_TRIM_THRESHOLD_: per-decision durable_rules sessions get ~3x cheaper (measured in
# shared/research/durable_rules.md, section 3.2). CASEROUTE_WORKERS=0: one process per core.
# The masking key lives apart from the decision log (a copy of the log alone reveals no
# patient): its own volume, unless CASEROUTE_AUDIT_KEY or a mounted secret file is given.
ENV PATH=/opt/caseroute/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_TRIM_THRESHOLD_=268435456 \
    CASEROUTE_RULESETS=/app/rulesets \
    CASEROUTE_HOST=0.0.0.0 \
    CASEROUTE_PORT=50051 \
    CASEROUTE_WORKERS=0 \
    CASEROUTE_AUDIT_DB=/var/lib/caseroute/audit.db \
    CASEROUTE_AUDIT_KEY_FILE=/etc/caseroute/key/audit.key
# A numeric user and group (10001), so Kubernetes' runAsNonRoot can verify them without the
# image's /etc/passwd. Only the two data directories belong to it.
RUN groupadd --system --gid 10001 caseroute \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin caseroute \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/caseroute /etc/caseroute/key
COPY --from=build /opt/caseroute /opt/caseroute
WORKDIR /app
# Rulesets and examples stay owned by root (mode 644/755): the service reads them and cannot
# change them; operators change rules by mounting a new directory (docs/deploy.md).
COPY rulesets ./rulesets
COPY examples ./examples
COPY deploy/docker/healthcheck.py /opt/caseroute/healthcheck.py
USER 10001:10001
VOLUME ["/var/lib/caseroute", "/etc/caseroute/key"]
EXPOSE 50051
# For plain Docker only: Kubernetes ignores HEALTHCHECK and uses the Deployment's native gRPC
# probes. The check is the standard gRPC health call from a small script that imports grpc
# alone (~0.15 s), not the full caseroute CLI (~0.4 s), every 30 s. Plaintext only: with TLS on,
# override it (`--health-cmd 'caseroute health --server 127.0.0.1:50051 --tls-ca ...'`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/caseroute/healthcheck.py"]
# SIGTERM (docker stop) drains in-flight calls for up to --grace seconds, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["caseroute"]
CMD ["serve"]
