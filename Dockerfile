FROM python:3.11-slim-bookworm

WORKDIR /app
COPY pyproject.toml README.md ./
COPY recorder ./recorder
COPY api ./api
RUN pip install --no-cache-dir . && useradd --system --create-home recorder \
    && mkdir -p /data/archive /data/archive_tmp /data/state && chown -R recorder /data

USER recorder
WORKDIR /data
# Configuration through the environment (see `rtp-recorder serve --help`), so compose files and
# `docker run -e` override any of it. Inside the container the API must listen on 0.0.0.0 to be
# reachable through a published port; how far it is published is the host's decision (the
# compose file keeps it on host loopback). Set RTP_RECORDER_API_TOKEN before publishing it
# wider: with a token, every route but GET /healthz requires it.
ENV RTP_RECORDER_HOST=0.0.0.0 \
    RTP_RECORDER_PORT=8080 \
    RTP_RECORDER_ALLOW_INSECURE_BIND=true \
    RTP_RECORDER_ARCHIVE_DIR=/data/archive \
    RTP_RECORDER_ARCHIVE_TMP_DIR=/data/archive_tmp \
    RTP_RECORDER_STATE=/data/state/state.sqlite3 \
    RTP_RECORDER_RTP_PORT_RANGE=40000-40099
EXPOSE 8080/tcp
# RTP/RTCP ports handed out to recordings: the same range as RTP_RECORDER_RTP_PORT_RANGE.
EXPOSE 40000-40099/udp
VOLUME ["/data"]
CMD ["rtp-recorder", "serve"]
