# The otel_cache demo service (python -m otel_cache_demo.service) and its load generator
# (python -m otel_cache_demo.loadgen), one image: docker-compose.yml runs it as
# service-sync, service-async and loadgen. See dashboards/README.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package's metadata and code only, so that a change to tests or docs keeps the layer.
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY otel_cache ./otel_cache
COPY demo ./demo
RUN pip install . ./demo

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
USER app
# Run from the home directory: the installed package is imported, not /src.
WORKDIR /home/app

EXPOSE 8000
CMD ["python", "-m", "otel_cache_demo.service", "--mode", "async", "--host", "0.0.0.0", "--port", "8000"]
