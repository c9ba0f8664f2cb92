FROM python:3.11-slim-bookworm

WORKDIR /app
COPY pyproject.toml README.md ./
COPY recorder ./recorder
COPY api ./api
RUN pip install --no-cache-dir . && useradd --system --create-home recorder \
    && mkdir -p /data/archive /data/archive_tmp /data/state && chown -R recorder /data

USER recorder
WORKDIR /data
EXPOSE 8080/tcp
# RTP/RTCP ports handed out to recordings (the lifecycle work binds them from this range).
EXPOSE 40000-40099/udp
VOLUME ["/data"]
CMD ["rtp-recorder", "serve", "--host", "0.0.0.0", "--port", "8080", \
     "--archive-dir", "/data/archive", "--archive-tmp-dir", "/data/archive_tmp", \
     "--state", "/data/state/state.sqlite3"]
