# syntax=docker/dockerfile:1
# The Fraud Lab app image: one image for every `fraudlab` command (data Jobs, training, MLflow
# server) and the MLServer runtime. Built and pushed by `make images` (scripts/images.sh):
#
#   docker build -t localhost:5001/fraud-lab/app:0.1.0 .                       # CPU torch
#   docker build --build-arg TORCH_VARIANT=cu130 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .    # CUDA torch (GPU nodes)
#
# TORCH_VARIANT / TORCH_INDEX_URL choose the torch wheel: `cpu` by default (≈ 200 MB); a CUDA
# variant (one that pytorch.org lists for torch 2.13.0) adds a few GB of CUDA libraries.
# Runs as uid 10001 and writes only under /tmp, so it works with readOnlyRootFilesystem when /tmp
# is an emptyDir (as in the manifests).

# NOTE: the base is pinned by tag here; its digest is resolved on a machine with a registry
# connection by scripts/pin-digests.sh (`scripts/pin-digests.sh --write` appends @sha256:…).
ARG PYTHON_IMAGE=python:3.11.15-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
ARG PYPI_INDEX_URL=https://pypi.org/simple
# Machines without a registry of their own pass pip settings through (scripts/podman-image.sh):
# a folder of wheels (the CPU torch wheel) and the CA bundle. Unset, pip's defaults apply.
ARG PIP_FIND_LINKS
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:${PATH}
RUN python -m venv /opt/venv
WORKDIR /src
# --8<-- [start:dependencies]
COPY requirements.lock ./
# torch first and exactly pinned, from its own index: a looser spec or PyPI alone pulls a
# multi-GB CUDA build (PyPI's torch wheels for Linux x86_64 depend on the CUDA libraries). Its own layer, so code changes do not re-download it.
RUN pip install --constraint requirements.lock \
      --index-url "${TORCH_INDEX_URL}" --extra-index-url "${PYPI_INDEX_URL}" \
      "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md ./
COPY reference_app ./reference_app
# reference_app/monitoring/prometheusrule.fraud-lab.yaml links here (package data: the alert rules).
COPY manifests/base/monitoring/prometheusrule.fraud-lab.yaml ./manifests/base/monitoring/
# The package and the kind-mode extras (PostgreSQL driver, S3 client), pinned by the lock file.
RUN pip install --constraint requirements.lock ".[kind]" \
 && pip check
# --8<-- [end:dependencies]
# Trim what no feature of the image uses (≈ 0.5 GB; `make images` prints the size):
# - test suites shipped inside wheels (pandas, scipy, sklearn, sympy, pyarrow, …: `tests` folders),
#   torch's own C++ test binaries and test data (torch/bin but torch_shm_manager, which
#   `import torch` needs; torch/test; torch/lib's test libraries),
#   C/C++ headers for building extensions (torch/include, pyarrow/include);
# - symbol tables of torch's libraries (strip --strip-unneeded: torch builds them itself, no
#   auditwheel/patchelf edits that stripping could break; libtorch_cpu alone drops ≈ 90 MB);
# - pyarrow's Arrow Flight (RPC) module and library: only Parquet and datasets are read and
#   written (pyarrow.lib does not link Flight; it does link Substrait, which stays);
# - compiled bytecode of sympy and networkx (torch requires them; nothing imports them at run
#   time; if something does, Python compiles them in memory) — the rest keeps its bytecode, which
#   halves every container's start (≈ 15 s → 6 s to import the app with and without);
# - pip, setuptools and wheel: nothing installs at run time (models load with env_manager local).
# tests/container runs every app container from the trimmed image (training and serving the MLP).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends binutils \
 && SITE=/opt/venv/lib/python3.11/site-packages \
 && find "${SITE}" -depth -type d -name tests -prune -exec rm -rf {} + \
 && find "${SITE}/torch/bin" -mindepth 1 -maxdepth 1 ! -name torch_shm_manager -exec rm -rf {} + \
 && rm -rf "${SITE}/torch/test" "${SITE}/torch/include" "${SITE}/pyarrow/include" \
           "${SITE}"/torch/lib/libtorchbind_test.so "${SITE}"/torch/lib/libaoti_custom_ops.so \
           "${SITE}"/torch/lib/libbackend_with_compiler.so \
 && find "${SITE}/torch/lib" -name '*.so*' -exec strip --strip-unneeded {} + \
 && rm -rf "${SITE}"/pyarrow/*flight* \
 && find "${SITE}/sympy" "${SITE}/networkx" -name __pycache__ -prune -exec rm -rf {} + \
 && python -m pip uninstall --yes --quiet pip setuptools wheel \
 && python -c "import torch, sklearn, pandas, pyarrow.parquet, pyarrow.dataset, scipy.stats, mlflow, mlserver; torch.nn.Linear(2, 1)(torch.ones(1, 2)); from reference_app.launchers.prometheus import rule_groups; assert rule_groups()"

FROM ${PYTHON_IMAGE} AS runtime
ARG PYTHON_IMAGE
ARG APP_VERSION=0.1.0
ARG FRAUD_GIT_COMMIT=unknown
ARG TORCH_VARIANT=cpu
# The builds add the revision (the commit) and the serving runtime's versions with --label, from
# `fraudlab image-labels` (scripts/versions.sh app_image_labels; lab 08).
# --8<-- [start:labels-user]
LABEL org.opencontainers.image.title="fraud-lab-app" \
      org.opencontainers.image.description="Fraud Lab: fraudlab CLI, MLflow server and MLServer runtime for the fraud detector" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}" \
      io.fraud-lab.torch-variant="${TORCH_VARIANT}"
# A numeric user with no login: Kubernetes' runAsNonRoot can only verify numeric users.
RUN groupadd --gid 10001 fraudlab \
 && useradd --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /bin/sh fraudlab
# --8<-- [end:labels-user]
COPY --from=build /opt/venv /opt/venv
# Everything that would write lands in /tmp: HOME (MLflow, pip), matplotlib's cache, MLServer's
# metrics and environments folders (default: under the working directory), Python bytecode off.
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/tmp \
    TMPDIR=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib \
    MLSERVER_METRICS_DIR=/tmp/mlserver-metrics \
    MLSERVER_ENVIRONMENTS_DIR=/tmp/mlserver-envs \
    PYTHONDONTWRITEBYTECODE=1 \
    GIT_PYTHON_REFRESH=quiet \
    PYTHONUNBUFFERED=1 \
    FRAUD_DATA_DIR=/data \
    FRAUD_SERVE_HOST=0.0.0.0 \
    FRAUD_GIT_COMMIT=${FRAUD_GIT_COMMIT}
WORKDIR /app
# MLflow 5000; MLServer REST 8080, gRPC 8081, metrics 8082.
EXPOSE 5000 8080 8081 8082
USER 10001:10001
ENTRYPOINT ["fraudlab"]
CMD ["--help"]
