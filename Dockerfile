# Kordon: one image for every role (collector, alerts, api) and the simulator.
#
#   docker build -t kordon .
#   docker run --rm kordon --help
#
# Two stages so the runtime image holds wheels' results only, not the build context.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kordon ./kordon
COPY collector ./collector
COPY alerts ./alerts
COPY api ./api
COPY simulators ./simulators
COPY dashboards ./dashboards
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KORDON_DATA_DIR=/var/lib/kordon
# A fixed, unprivileged uid: named volumes keep the spool and alert state owned by it.
RUN groupadd --system --gid 10001 kordon \
    && useradd --system --uid 10001 --gid kordon --home-dir /var/lib/kordon \
       --shell /usr/sbin/nologin kordon \
    && install -d -o kordon -g kordon -m 0750 /var/lib/kordon
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# `kordon dashboards check|push` look here (sys.prefix/share/dashboards).
COPY dashboards/*.json /usr/local/share/dashboards/
COPY dashboards/provisioning /usr/local/share/dashboards/provisioning
USER kordon
WORKDIR /var/lib/kordon
VOLUME ["/var/lib/kordon"]
EXPOSE 8080 9101
ENTRYPOINT ["kordon"]
CMD ["run", "--roles", "collector,alerts,api"]
