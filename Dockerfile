FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir -e '.[monitor]'
# A bare worker: pool, concurrency and serializers come from celeryconfig.py.
CMD ["celery", "-A", "workers", "worker", "--loglevel=INFO"]
