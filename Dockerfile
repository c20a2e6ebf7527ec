# syntax=docker/dockerfile:1
# The product's image: the API serving the dashboard (`kalshi-analytics api`, the default command). The same image
# runs the one-shot migration (`kalshi-analytics db upgrade`), the live runner (`kalshi-analytics live runner`) and
# the simulator (`kalshi-analytics simulate`) with another command; see docker-compose.yml.
#
#   docker build -t kalshi-analytics .
#   docker run --rm -p 127.0.0.1:8000:8000 -e DB_URL=postgresql://user:password@host:5432/kalshi kalshi-analytics
#
# Stages: the dashboard built with Node.js, the package installed into a virtualenv, and a slim runtime holding
# only those two (no compilers, no Node.js, no pip cache), running as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# ---------------------------------------------------------------------------------------------------- dashboard
FROM ${NODE_IMAGE} AS dashboard
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ------------------------------------------------------------------------------------------------------ package
# Every dependency ships a CPython 3.11 manylinux wheel: no compiler is needed here either.
FROM ${PYTHON_IMAGE} AS python-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ ./src/
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip

# ------------------------------------------------------------------------------------------------------ runtime
FROM ${PYTHON_IMAGE} AS runtime
# Settings come from the environment (see .env.example); these are the container's defaults: listen on every
# interface of the container, metrics scrapeable, JSON logs, the dashboard's build where the image keeps it.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    METRICS_HOST=0.0.0.0 \
    LOG_FORMAT=json \
    API_DASHBOARD_DIR=/app/dashboard \
    KALSHI_ANALYTICS_DATA_DIR=/app/data
RUN groupadd --system --gid 10001 kalshi \
    && useradd --system --uid 10001 --gid kalshi --home-dir /app --no-create-home --shell /usr/sbin/nologin kalshi \
    && mkdir -p /app/data \
    && chown kalshi:kalshi /app/data
COPY --from=python-build /opt/venv /opt/venv
COPY --from=dashboard /src/frontend/dist /app/dashboard
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness from the product's own endpoint (readiness, /api/v1/ready, also needs a recorder: see the docs).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
# SIGTERM (docker stop) ends the server gracefully: open streams closed, requests in flight answered.
STOPSIGNAL SIGTERM
CMD ["kalshi-analytics", "api"]
