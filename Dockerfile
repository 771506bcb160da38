# tokenrelay worker image (also runs Flower, the sandbox emulators and the demo).
#   docker build -t tokenrelay:0.1.0 .
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# an unprivileged user with fixed ids (runAsNonRoot-friendly); the code stays root-owned, read-only
RUN groupadd --system --gid 10001 tokenrelay \
    && useradd --system --uid 10001 --gid tokenrelay --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tokenrelay

WORKDIR /app
COPY . /app
# flower comes with the monitor extra; everything else is the plain install path
RUN pip install ".[monitor]" && rm -rf /app/build

USER 10001:10001
# a bare worker: pool, concurrency and serializers come from celeryconfig.py
CMD ["sh", "deploy/worker.sh"]
