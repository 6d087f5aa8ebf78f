# One image for the three services, the console and the migration step:
#   python -m payment | python -m order | python -m delivery | python -m console | saga migrate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SAGA_HTTP_HOST=0.0.0.0 \
    SAGA_STATE_DIR=/tmp/saga

RUN useradd --create-home --uid 10001 saga
WORKDIR /app

COPY pyproject.toml README.md ./
COPY common/ common/
COPY payment/ payment/
COPY order/ order/
COPY delivery/ delivery/
COPY console/ console/
COPY saga_tools/ saga_tools/
COPY migrations/ migrations/
# Editable, so `saga migrate` finds migrations/ next to the packages.
RUN pip install -e .

USER saga
EXPOSE 8001 8002 8003 8004
CMD ["saga", "--help"]
