# DetectK-C: dtk, dtk-dispatch and dtk-worker on Debian 12.
#
#   docker build -t detectk-c .
#   docker run --rm -e DTK_KAFKA_BROKERS=kafka:9092 -e DTK_SIGNING_KEY detectk-c
#
# Every RUN calls a script under deploy/docker/ that CI also runs
# (tests/py/test_deploy_files.py); docs/docker.md describes the image.

# ---- build: Release, no tests ------------------------------------------------
FROM debian:12-slim AS build
COPY deploy/docker/ /src/deploy/docker/
COPY CMakeLists.txt /src/
COPY core/ /src/core/
COPY cli/ /src/cli/
COPY dispatcher/ /src/dispatcher/
COPY worker/ /src/worker/
COPY bench/ /src/bench/
# Installs the build dependencies, builds with -DDTK_TESTS=OFF, and stages
# bin/, lib/ and the list of Debian runtime packages (ldd closure) in /out.
RUN ["/src/deploy/docker/build-stage.sh", "/src", "/out"]

# ---- runtime: the three binaries, their libraries, a non-root user -----------
FROM debian:12-slim AS runtime
LABEL org.opencontainers.image.title="detectk-c" \
      org.opencontainers.image.description="DetectK in C: dtk, dtk-dispatch, dtk-worker"
COPY --from=build /out/ /usr/local/
COPY deploy/docker/runtime-stage.sh /usr/local/share/dtk/deploy/docker/
# Installs the Debian runtime libraries the build stage listed, ldconfig, user
# dtk (10001), /etc/dtk/configs, /var/lib/dtk; checks every library resolves.
RUN ["/usr/local/share/dtk/deploy/docker/runtime-stage.sh", "/"]

# Metric configs are mounted here (dtk-dispatch reads DTK_CONFIG_DIR).
ENV DTK_CONFIG_DIR=/etc/dtk/configs \
    DTK_METRICS_PORT=9464 \
    DTK_LOG_FORMAT=json
VOLUME ["/var/lib/dtk"]
WORKDIR /var/lib/dtk
USER dtk:dtk
EXPOSE 9464
# /healthz: 200 while the worker's main loop polls (fleet.md). Only the worker
# serves it; a dtk or dtk-dispatch container has no healthcheck to pass, so
# run those with --no-healthcheck (compose: healthcheck: disable: true).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/dtk-healthcheck", "/healthz"]
STOPSIGNAL SIGTERM
CMD ["dtk-worker"]
