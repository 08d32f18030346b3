# The topoctl image: the CLI, the node agent and (later) the controller.
FROM python:3.11-slim
COPY pyproject.toml README.md /src/
COPY reconciler /src/reconciler
RUN pip install --no-cache-dir /src && rm -rf /src
USER 0
ENTRYPOINT ["topoctl"]
