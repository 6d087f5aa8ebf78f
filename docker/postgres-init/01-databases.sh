#!/bin/bash
# One database per service, each owned by its own role with its own password (DESIGN §2: no service
# reads another's data). Run once by the postgres image, on an empty data volume. The passwords come
# from the environment (docker-compose.yml, from .env: docker/new-secrets.sh writes one); the server
# stores them as SCRAM-SHA-256 verifiers. No role but a database's owner may connect to it.
# psql takes the passwords from its environment (\getenv, psql 15), not from its command line, which every
# user of the host sees (ps); the script reaches psql on its standard input.
set -euo pipefail
: "${PAYMENT_DB_PASSWORD:?}" "${ORDER_DB_PASSWORD:?}" "${DELIVERY_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv payment_password PAYMENT_DB_PASSWORD
\getenv order_password ORDER_DB_PASSWORD
\getenv delivery_password DELIVERY_DB_PASSWORD
SET password_encryption = 'scram-sha-256';
CREATE ROLE payment LOGIN PASSWORD :'payment_password';
CREATE ROLE "order" LOGIN PASSWORD :'order_password';
CREATE ROLE delivery LOGIN PASSWORD :'delivery_password';
CREATE DATABASE payment OWNER payment;
CREATE DATABASE "order" OWNER "order";
CREATE DATABASE delivery OWNER delivery;
REVOKE CONNECT ON DATABASE payment FROM PUBLIC;
REVOKE CONNECT ON DATABASE "order" FROM PUBLIC;
REVOKE CONNECT ON DATABASE delivery FROM PUBLIC;
REVOKE CONNECT ON DATABASE postgres FROM PUBLIC;
REVOKE CONNECT ON DATABASE template1 FROM PUBLIC;
SQL
