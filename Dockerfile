# One image for the three Dagster services of docker-compose.yml (user code gRPC server,
# webserver, daemon). No credentials are baked in: every URL and key comes from the environment
# at run time (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

# Non-root runtime user (created first so later COPY/RUN steps can hand it files).
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/breakout breakout

# The project lives in /opt/breakout and is installed editable from there: the package finds
# sql/ (resources/sql.py) and sample_data/ (settings.PROJECT_ROOT) relative to its source files,
# so the source must stay next to them instead of moving into site-packages.
WORKDIR /opt/breakout

COPY pyproject.toml constraints.txt README.md ./
COPY breakout_assets/ breakout_assets/
COPY sql/ sql/
COPY sample_data/ sample_data/
COPY model_store/ model_store/
COPY workspace.docker.yaml ./

# The k8s extra: run pods launched by K8sRunLauncher load the instance with this image
# (deploy/k8s/); under docker-compose it is unused.
RUN pip install -c constraints.txt -e '.[k8s]'

# The instance config. storage/ under DAGSTER_HOME (compute logs, local artifacts) is a named
# volume shared by the Dagster services in docker-compose.yml; it starts with this ownership.
COPY dagster.yaml ${DAGSTER_HOME}/dagster.yaml
RUN mkdir -p ${DAGSTER_HOME}/storage \
    && chown -R breakout:breakout ${DAGSTER_HOME} /opt/breakout/model_store

USER breakout

EXPOSE 3000 4000
