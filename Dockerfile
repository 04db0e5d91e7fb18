# syntax=docker/dockerfile:1
# Image of the Dagster webserver and daemon of docker-compose.yml: the platform
# with exactly the pins of requirements.lock, on Python 3.11 like `make install`.
#   docker compose build          (or: docker build -t datamesh-dagster:local .)
# requirements.lock is resolved for linux/amd64 (docker-compose.yml sets it).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# The uv release the Makefile installs.
ARG UV_VERSION=0.13.8

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DO_NOT_TRACK=1 \
    UV_NO_CACHE=1 \
    DAGSTER_HOME=/opt/dagster/home

RUN groupadd --gid 1000 mesh \
    && useradd --uid 1000 --gid mesh --create-home --shell /usr/sbin/nologin mesh \
    && python -m pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /opt/datamesh

# Third-party packages: exactly the lock file, in a layer of their own.
COPY requirements.lock ./
RUN uv pip install --system --compile-bytecode -r requirements.lock

# The project, editable like `make install` (datamesh.paths finds data_products/
# and sql/ beside the package); its dependencies are all in the lock already.
COPY . ./
RUN uv pip install --system --no-deps -e . \
    && chown -R mesh:mesh sql

# Dagster instance (Postgres storage from the environment) and workspace.
COPY docker/dagster/dagster.yaml docker/dagster/workspace.yaml ${DAGSTER_HOME}/
RUN mkdir -p "${DAGSTER_HOME}/storage" && chown -R mesh:mesh /opt/dagster

USER mesh
# Fail the build when the code location does not load. Loading also writes the
# dbt sources and manifest under sql/ once, so containers start without a parse.
RUN python -c "import orchestration.definitions"

EXPOSE 3000
CMD ["dagster-webserver", "--host", "0.0.0.0", "--port", "3000", "--workspace", "/opt/dagster/home/workspace.yaml"]
