# segstream worker image. Build and run with docker compose (see docker-compose.yml), or:
#   docker build -t segstream . && docker run --rm segstream --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY . /src
RUN pip install --no-cache-dir /src \
    && useradd --system --uid 10001 --create-home --home-dir /home/segstream segstream \
    && mkdir -p /var/lib/segstream \
    && chown segstream:segstream /var/lib/segstream

# Faust keeps local table data in <app>-data/ under the working directory: keep it writable.
WORKDIR /var/lib/segstream
USER segstream

EXPOSE 6066
ENTRYPOINT ["segstream"]
CMD ["worker"]
