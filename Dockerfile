# caseroute gRPC server image.
# The build stage compiles durable_rules' C extension (PyPI ships only an sdist); the runtime
# stage carries no compiler and runs as a non-root user.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel ships the reference ruleset for caseroute.testing (force-include in pyproject.toml).
COPY rulesets ./rulesets
RUN python -m venv /opt/caseroute \
 && /opt/caseroute/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim-bookworm
# MALLOC_TRIM_THRESHOLD_: per-decision durable_rules sessions get ~3x cheaper (measured in
# shared/research/durable_rules.md, section 3.2). CASEROUTE_WORKERS=0: one process per core.
ENV PATH=/opt/caseroute/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_TRIM_THRESHOLD_=268435456 \
    CASEROUTE_RULESETS=/app/rulesets \
    CASEROUTE_HOST=0.0.0.0 \
    CASEROUTE_PORT=50051 \
    CASEROUTE_WORKERS=0 \
    CASEROUTE_AUDIT_DB=/var/lib/caseroute/audit.db
# The decision log lives on a volume; its masking key is created beside it on first start
# unless CASEROUTE_AUDIT_KEY (or CASEROUTE_AUDIT_KEY_FILE, e.g. a mounted secret) is set.
RUN useradd --system --uid 10001 --home-dir /app caseroute \
 && install -d -o caseroute -m 0700 /var/lib/caseroute
COPY --from=build /opt/caseroute /opt/caseroute
WORKDIR /app
COPY --chown=caseroute rulesets ./rulesets
COPY --chown=caseroute examples ./examples
USER caseroute
VOLUME ["/var/lib/caseroute"]
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["caseroute", "health", "--server", "127.0.0.1:50051"]
# SIGTERM (docker stop) drains in-flight calls for up to --grace seconds, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["caseroute"]
CMD ["serve"]
