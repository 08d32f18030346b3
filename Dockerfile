# The topoctl image: the CLI, the controller (`topoctl run`) and the node agent.
#   docker build --build-arg VERSION=1.2.3 -t REGISTRY/topoctl:1.2.3 .   (docs/install.md)
# The release workflow (.github/workflows/release.yml) builds it on a tag and pushes it to
# the repository's own registry, ghcr.io/<owner>/<repository>.
# Stage 1 builds the wheel; stage 2 installs that wheel alone, so no source tree, build
# tool or compiler reaches the image. No HEALTHCHECK: Kubernetes probes /healthz and
# /readyz (deploy/), and the agent has no port at all.

FROM python:3.11-slim-bookworm AS builder
# The version the wheel carries (the build context has no git history for setuptools-scm).
ARG VERSION=0.0.0
ENV SETUPTOOLS_SCM_PRETEND_VERSION_FOR_TOPOCTL=$VERSION
WORKDIR /src
RUN pip install --no-cache-dir build==1.2.2.post1
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN python -m build --wheel --outdir /dist

FROM python:3.11-slim-bookworm
# gitpython drives the git binary; ssh:// and scp-style remotes need openssh-client.
# Versions are left to the Debian release the base image pins (security updates apply).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 topoctl \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin topoctl
COPY --from=builder /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
# A numeric user, so `runAsNonRoot` can verify it. The agent's DaemonSet runs as root
# (runAsUser: 0) for NET_ADMIN; the controller keeps this user.
USER 65532:65532
ENTRYPOINT ["topoctl"]
