# The workload image: pipeline steps, Katib trials, the Qdrant snapshot job, the Argo Events
# trigger job and the serving transformer / request-log sink all run this project from it.
#
# Tag: components/versions.py IMAGES["workloads"]; base: IMAGES["python-slim"] (tests check both).
# It installs the project with its runtime dependencies pinned by constraints.txt, the same lock
# the tests run against; dev extras (pytest, moto, ruff) are not installed.

FROM docker.io/library/python:3.12.7-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
RUN python -m venv /opt/mlp
COPY constraints.txt pyproject.toml README.md LICENSE ./
COPY stacks ./stacks
COPY components ./components
COPY workloads ./workloads
COPY mlp ./mlp
COPY policy ./policy
# -c: every runtime dependency at its pin in the lock; pip check fails the build on a conflict.
RUN /opt/mlp/bin/pip install -c constraints.txt . \
    && /opt/mlp/bin/pip check

FROM docker.io/library/python:3.12.7-slim-bookworm

ARG MLP_UID=10001
RUN groupadd --system --gid "${MLP_UID}" mlp \
    && useradd --system --uid "${MLP_UID}" --gid mlp --home-dir /home/mlp --create-home --shell /usr/sbin/nologin mlp \
    # KFP's launcher stages artifacts under /gcs, /minio and /s3 (a contract of its Python
    # executor); created here so a non-root step can write them (kubeflow/pipelines#5673).
    && mkdir -p /gcs /minio /s3 \
    && chown mlp:mlp /gcs /minio /s3

COPY --from=build /opt/mlp /opt/mlp

ENV PATH=/opt/mlp/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/mlp \
    MLP_HOME=/home/mlp/.mlp

USER ${MLP_UID}:${MLP_UID}
WORKDIR /home/mlp

ENTRYPOINT ["mlp"]
CMD ["--help"]
