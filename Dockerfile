# caseroute container image.
# Build stage compiles durable_rules' C extension (PyPI ships only an sdist); the runtime stage
# carries no compiler and runs as a non-root user.
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/caseroute \
 && /opt/caseroute/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM python:3.11-slim-bookworm
# A larger trim threshold makes per-decision durable_rules sessions ~3x cheaper (measured in
# shared/research/durable_rules.md, section 3.2).
ENV PATH=/opt/caseroute/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_TRIM_THRESHOLD_=268435456 \
    CASEROUTE_RULESET=/app/rulesets/patient-enquiries
RUN useradd --system --uid 10001 --home-dir /app caseroute
COPY --from=build /opt/caseroute /opt/caseroute
WORKDIR /app
COPY --chown=caseroute rulesets ./rulesets
COPY --chown=caseroute examples ./examples
USER caseroute
ENTRYPOINT ["caseroute"]
# Until the gRPC server exists: validate the embedded ruleset. Decide with e.g.
#   docker run IMAGE decide --case examples/cases/clinical-tx.json --roster examples/roster.json
CMD ["rules", "check", "/app/rulesets/patient-enquiries"]
