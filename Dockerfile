# syntax=docker/dockerfile:1
# Build stage: resolve the locked dependencies into a virtualenv.
FROM python:3.12-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/venv UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-default-groups --no-install-project
# the product only: kernel, app, connectors (simulators and tests stay out of the image)
COPY kernel ./kernel
COPY app ./app
COPY connectors ./connectors
COPY alembic ./alembic
COPY alembic.ini ./
RUN uv sync --frozen --no-default-groups --no-editable

# Runtime stage: the venv and the migrations, run as an unprivileged user.
FROM python:3.12-slim
RUN useradd --system --create-home --uid 10001 gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/alembic /app/alembic
COPY --from=build /src/alembic.ini /app/alembic.ini
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 GATEWAY_LOG_FORMAT=json
USER gateway
EXPOSE 8000
# the API's /readyz (no curl in the image); docker-compose.yml gives the worker its own
HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=3 \
  CMD ["erp-gateway", "healthcheck"]
CMD ["erp-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
