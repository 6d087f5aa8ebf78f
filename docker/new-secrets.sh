#!/bin/sh
# Writes .env next to docker-compose.yml with a fresh random password for each database role and the
# PostgreSQL superuser (mode 0600; .env is ignored by git and by Docker's build context). docker compose
# reads it on its own. An existing .env is kept: its passwords are already in the database volume.
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo ".env exists; keeping it (remove it and the postgres volume, docker compose down -v, to start over)" >&2
  exit 0
fi
umask 077
{
  for name in POSTGRES_PASSWORD PAYMENT_DB_PASSWORD ORDER_DB_PASSWORD DELIVERY_DB_PASSWORD; do
    echo "$name=$(openssl rand -hex 24)"
  done
} > .env
echo "wrote .env (mode 0600) with the database passwords"
