# One image for every role: `cobro serve` (API, the default), `cobro worker`, `cobro migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    COBRO_HOST=0.0.0.0

WORKDIR /srv/cobro
COPY pyproject.toml README.md ./
COPY app ./app
COPY resolvers ./resolvers
COPY providers ./providers
RUN pip install . && useradd --system --home /srv/cobro cobro && mkdir -p var && chown cobro var
USER cobro

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["cobro"]
CMD ["serve"]
