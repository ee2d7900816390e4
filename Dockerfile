# The shop as an image: the wheel built from this tree, installed into a slim Python and run
# as a user without privileges. Alone it keeps SQLite in the /data volume:
#   docker build -t consumption-support-shop . && docker run -p 8000:8000 consumption-support-shop
# With PostgreSQL and Redis beside it: `docker compose up --build` (compose.yaml).

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install /tmp/dist/*.whl \
 && rm -r /tmp/dist \
 && useradd --system --uid 10001 --create-home --home-dir /home/shop shop \
 && mkdir /data \
 && chown shop:shop /data
USER shop
WORKDIR /data
# the token secret is made into DATA_DIR unless SECRET_KEY is given; logs are JSON lines
ENV DATA_DIR=/data \
    DATABASE_URL=sqlite:////data/shop.db \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
# SIGTERM (docker stop) lets requests in flight finish: give it more than GRACEFUL_SHUTDOWN_SECONDS (docker stop -t 40)
STOPSIGNAL SIGTERM
CMD ["shop", "serve", "--host", "0.0.0.0", "--port", "8000"]
