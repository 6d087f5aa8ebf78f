#!/bin/sh
# Writes .env next to docker-compose.yml (mode 0600; .env is ignored by git and by Docker's build context),
# which docker compose reads on its own:
# - a fresh random password for each database role and the PostgreSQL superuser;
# - a random password for each Kafka principal (admin, payment, order, delivery, operator);
# - one API key per scope (SHOP_API_KEY, CARRIER_API_KEY, OPERATOR_API_KEY) and the order service's own
#   (ORDER_PAYMENT_API_KEY, scope payment-lookup), and SAGA_API_KEYS: their entries (name, scope, SHA-256
#   digest, and the carrier's shop; no key), the
#   only thing the services are given to check keys against.
# An existing .env is kept: its passwords are already in the volumes. To rotate an API key, add a new
# entry to SAGA_API_KEYS (`saga keys new`, or the lines below), `docker compose up -d`, move the callers,
# then remove the old entry.
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo ".env exists; keeping it (remove it and the volumes, docker compose down -v, to start over)" >&2
  exit 0
fi
umask 077

new_key() {  # saga_ and 256 random bits, URL-safe base64 without padding (as `saga keys new` makes them)
  printf 'saga_%s' "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"
}
digest() {
  printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1
}

shop_key=$(new_key)
carrier_key=$(new_key)
operator_key=$(new_key)
order_key=$(new_key)
{
  for name in POSTGRES_PASSWORD PAYMENT_DB_PASSWORD ORDER_DB_PASSWORD DELIVERY_DB_PASSWORD \
      KAFKA_ADMIN_PASSWORD KAFKA_PAYMENT_PASSWORD KAFKA_ORDER_PASSWORD KAFKA_DELIVERY_PASSWORD \
      KAFKA_OPERATOR_PASSWORD; do
    echo "$name=$(openssl rand -hex 24)"
  done
  echo "SHOP_API_KEY=$shop_key"
  echo "CARRIER_API_KEY=$carrier_key"
  echo "OPERATOR_API_KEY=$operator_key"
  echo "ORDER_PAYMENT_API_KEY=$order_key"
  printf 'SAGA_API_KEYS="demo-shop shop sha256:%s;demo-carrier carrier sha256:%s for=demo-shop;demo-operator operator sha256:%s;order-service payment-lookup sha256:%s"\n' \
    "$(digest "$shop_key")" "$(digest "$carrier_key")" "$(digest "$operator_key")" "$(digest "$order_key")"
} > .env
echo "wrote .env (mode 0600): database and Kafka passwords, and an API key per scope (SHOP_API_KEY, ...)"
