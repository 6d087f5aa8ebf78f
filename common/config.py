"""Settings read from the environment, shared by the services, the CLI and the local stack.

Every setting has a default that works with the local stack (`saga run`); a deployment overrides them
through environment variables. Nothing here opens a connection: settings are plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# `Service` is declared in common/services.py with what each service is known by; most modules import it
# from here, as they did before it moved (hence the explicit re-export).
from common.services import SERVICES
from common.services import Service as Service

# The saga console (console/), next to the services.
DEFAULT_CONSOLE_HTTP_PORT = 8004


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


def normalise_database_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use the psycopg 3 driver for it.

    Users paste URLs from other tools; SQLAlchemy would otherwise pick psycopg2, which we do not ship.
    """
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """All configuration, one environment variable per field (listed in docs/operators/configuration.md)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Where the infrastructure is. Unset means: the local stack starts its own and fills these in.
    kafka_bootstrap_servers: str | None = Field(default=None, alias="KAFKA_BOOTSTRAP_SERVERS")
    payment_database_url: str | None = Field(default=None, alias="PAYMENT_DATABASE_URL")
    order_database_url: str | None = Field(default=None, alias="ORDER_DATABASE_URL")
    delivery_database_url: str | None = Field(default=None, alias="DELIVERY_DATABASE_URL")

    # How the Kafka clients authenticate (common/kafka_security.py). Unset: PLAINTEXT, no credentials.
    # None rather than a default, so an operator's unset variable never hides what the stack recorded.
    kafka_security_protocol: KafkaSecurityProtocol | None = Field(
        default=None, alias="KAFKA_SECURITY_PROTOCOL"
    )
    kafka_sasl_mechanism: KafkaSaslMechanism | None = Field(default=None, alias="KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(default=None, alias="KAFKA_SASL_USERNAME")
    # SecretStr: printed as '**********' wherever settings are shown or logged.
    kafka_sasl_password: SecretStr | None = Field(default=None, alias="KAFKA_SASL_PASSWORD")
    # The password read from a file (0600) when KAFKA_SASL_PASSWORD is unset: what the local stack hands
    # out, so no password sits in an environment listing or in the stack's record.
    kafka_sasl_password_file: Path | None = Field(default=None, alias="KAFKA_SASL_PASSWORD_FILE")
    # CA certificate (PEM) the broker's certificate is checked against; unset: the system's CAs.
    kafka_ssl_cafile: Path | None = Field(default=None, alias="KAFKA_SSL_CAFILE")

    # Who may call the HTTP APIs (common/auth.py): key entries `name scopes sha256:<hex>`, inline (`;` or
    # newlines between entries) and/or in a file that is re-read when it changes. Neither set: a service
    # refuses to start, unless authentication is turned off for development (announced at start and on
    # /readyz). The local stack makes demo keys when none are configured
    # (saga_tools/local_stack/local_api_keys.py).
    api_keys: str | None = Field(default=None, alias="SAGA_API_KEYS")
    api_keys_file: Path | None = Field(default=None, alias="SAGA_API_KEYS_FILE")
    disable_authentication: bool = Field(default=False, alias="SAGA_DISABLE_AUTHENTICATION")
    # /metrics without a key (for a scraper inside a trusted network); by default it needs `operator`.
    public_metrics: bool = Field(default=False, alias="SAGA_PUBLIC_METRICS")
    # The key the `saga` command sends (it needs the operator scope), or a file holding it. The same name
    # as the Python client's operator key: one variable, one key, wherever it is read.
    operator_api_key: SecretStr | None = Field(default=None, alias="SAGA_OPERATOR_API_KEY")
    operator_api_key_file: Path | None = Field(default=None, alias="SAGA_OPERATOR_API_KEY_FILE")
    # The key the order service sends when it asks payment about a checkout (scope `payment-lookup`: it
    # may read payments and nothing else; common/access.py PAYMENT_READ).
    order_payment_api_key: SecretStr | None = Field(default=None, alias="ORDER_PAYMENT_API_KEY")
    order_payment_api_key_file: Path | None = Field(default=None, alias="ORDER_PAYMENT_API_KEY_FILE")

    # HTTP API of each service (the default ports are declared in common/services.py).
    http_host: str = Field(default="127.0.0.1", alias="SAGA_HTTP_HOST")
    payment_http_port: int = Field(default=SERVICES[Service.PAYMENT].http_port, alias="PAYMENT_HTTP_PORT")
    order_http_port: int = Field(default=SERVICES[Service.ORDER].http_port, alias="ORDER_HTTP_PORT")
    delivery_http_port: int = Field(default=SERVICES[Service.DELIVERY].http_port, alias="DELIVERY_HTTP_PORT")
    # The saga console (console/): its port, and its public base URL (default http://127.0.0.1:<port>;
    # an https URL makes its session cookie Secure).
    console_http_port: int = Field(default=DEFAULT_CONSOLE_HTTP_PORT, alias="CONSOLE_HTTP_PORT")
    console_url: str | None = Field(default=None, alias="CONSOLE_URL")
    # The console receives the services' spans (OTLP/HTTP at /v1/traces, kept in memory) and draws each
    # saga's trace on its page: what `saga run` turns on when no collector is configured.
    console_traces: bool = Field(default=False, alias="CONSOLE_TRACES")
    # How long a client may keep a connection without using it (common/http_server.py): a new connection
    # must send its first request head within the first, an idle one its next request within the second.
    http_head_timeout_seconds: float = Field(default=10.0, gt=0, alias="SAGA_HTTP_HEAD_TIMEOUT_SECONDS")
    http_keepalive_seconds: float = Field(default=15.0, gt=0, alias="SAGA_HTTP_KEEPALIVE_SECONDS")
    # The longest a request waits for its answer (common/web.py): past it, a 503 with Retry-After instead
    # of waiting on a database that stopped answering. Above the payment gateway's timeout, and below the
    # 10 s a shop's HTTP client commonly waits.
    http_answer_seconds: float = Field(default=5.0, ge=1, le=300, alias="SAGA_HTTP_ANSWER_SECONDS")
    # Public base URLs, used for `Location` headers and by the CLI. Default: http://127.0.0.1:<port>.
    payment_url: str | None = Field(default=None, alias="PAYMENT_URL")
    order_url: str | None = Field(default=None, alias="ORDER_URL")
    delivery_url: str | None = Field(default=None, alias="DELIVERY_URL")
    # Where the order service asks payment about a checkout it has not recorded yet (read-only). Default:
    # PAYMENT_URL; set it when the public URL is not reachable from the order service (e.g. in Docker).
    order_payment_api_url: str | None = Field(default=None, alias="ORDER_PAYMENT_API_URL")

    # Topics.
    topic_partitions: int = Field(default=3, ge=1, alias="SAGA_TOPIC_PARTITIONS")
    # Unset: follows the cluster (common/replication.py), three copies on three brokers or more.
    topic_replication_factor: int | None = Field(default=None, ge=1, alias="SAGA_TOPIC_REPLICATION_FACTOR")

    # Business settings.
    delivery_deadline_seconds: float = Field(default=30.0, gt=0, alias="ORDER_DELIVERY_DEADLINE_SECONDS")
    auto_progress_seconds: float | None = Field(default=None, ge=0, alias="DELIVERY_AUTO_PROGRESS_SECONDS")
    payment_gateway: str = Field(default="simulator", alias="PAYMENT_GATEWAY")
    payment_gateway_url: str | None = Field(default=None, alias="PAYMENT_GATEWAY_URL")
    gateway_timeout_seconds: float = Field(default=2.0, gt=0, alias="PAYMENT_GATEWAY_TIMEOUT_SECONDS")
    refund_max_attempts: int = Field(default=5, ge=1, alias="PAYMENT_REFUND_MAX_ATTEMPTS")
    # A refund claimed by a worker that died mid-call is attempted again after this lease (the gateway's
    # idempotency key makes the repeat safe).
    refund_lease_seconds: float = Field(default=30.0, gt=0, alias="PAYMENT_REFUND_LEASE_SECONDS")
    # A checkout still PENDING this long after it began was interrupted (a crash between the charge and
    # its record): the recovery sweep asks the gateway again with the same key and finishes it.
    checkout_recovery_seconds: float = Field(default=10.0, gt=0, alias="PAYMENT_CHECKOUT_RECOVERY_SECONDS")
    # Webhooks (order/webhooks): the time an endpoint has to answer, the longest wait between attempts,
    # how long an endpoint may fail every attempt before it is disabled, requests in flight at once, and
    # whether endpoints may be http or private addresses (a platform on a developer's machine, tests).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60, alias="WEBHOOK_TIMEOUT_SECONDS")
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0, alias="WEBHOOK_RETRY_CAP_SECONDS")
    webhook_disable_after_seconds: float = Field(
        default=3 * 24 * 3600.0, gt=0, alias="WEBHOOK_DISABLE_AFTER_SECONDS"
    )
    webhook_concurrency: int = Field(default=16, ge=1, le=256, alias="WEBHOOK_CONCURRENCY")
    webhook_allow_local_urls: bool = Field(default=False, alias="WEBHOOK_ALLOW_LOCAL_URLS")
    # Acknowledged deliveries, attempts and events are kept this long (pending ones until sent).
    webhook_retention_days: float = Field(default=30.0, gt=0, alias="WEBHOOK_RETENTION_DAYS")
    # Most events a consumer applies in one transaction (it batches only what queued up while busy).
    consumer_batch_max: int = Field(default=200, ge=1, alias="SAGA_CONSUMER_BATCH_MAX")
    # Longer than the topics' retention, so a replay never brings back an event the inbox forgot.
    inbox_retention_hours: float = Field(default=192.0, gt=0, alias="SAGA_INBOX_RETENTION_HOURS")

    # Logging of the services (Faust's worker log level).
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", alias="SAGA_LOG_LEVEL"
    )

    # Local stack.
    state_dir: Path = Field(default=Path(".state"), alias="SAGA_STATE_DIR")
    kafka_version: str = Field(default="4.1.1", alias="SAGA_KAFKA_VERSION")
    cache_dir: Path = Field(default=Path.home() / ".cache" / "saga-platform", alias="SAGA_CACHE_DIR")
    # The local PostgreSQL speaks TLS, refuses plain TCP, and the services verify it (sslmode=verify-full).
    # Off by default: the services then use its Unix socket, which is cheaper and never leaves the machine.
    postgres_tls: bool = Field(default=False, alias="SAGA_POSTGRES_TLS")
    # The local broker with TLS, SCRAM principals and ACLs (`saga run --kafka-security`); off by default.
    kafka_secure: bool = Field(default=False, alias="SAGA_KAFKA_SECURE")

    @field_validator("payment_database_url", "order_database_url", "delivery_database_url")
    @classmethod
    def _use_psycopg3(cls, url: str | None) -> str | None:
        return normalise_database_url(url) if url else url

    def database_url(self, service: Service) -> str | None:
        return {
            Service.PAYMENT: self.payment_database_url,
            Service.ORDER: self.order_database_url,
            Service.DELIVERY: self.delivery_database_url,
        }[service]

    def http_port(self, service: Service) -> int:
        return {
            Service.PAYMENT: self.payment_http_port,
            Service.ORDER: self.order_http_port,
            Service.DELIVERY: self.delivery_http_port,
        }[service]

    def base_url(self, service: Service) -> str:
        explicit = {
            Service.PAYMENT: self.payment_url,
            Service.ORDER: self.order_url,
            Service.DELIVERY: self.delivery_url,
        }[service]
        return (explicit or f"http://127.0.0.1:{self.http_port(service)}").rstrip("/")

    def console_base_url(self) -> str:
        return (self.console_url or f"http://127.0.0.1:{self.console_http_port}").rstrip("/")

    def operator_api_key_value(self) -> str | None:
        """The key the `saga` command sends: SAGA_OPERATOR_API_KEY, else the one its _FILE names."""
        return _secret(self.operator_api_key, self.operator_api_key_file)

    def payment_lookup_api_key(self) -> str | None:
        """The key the order service sends to payment: ORDER_PAYMENT_API_KEY, else its file."""
        return _secret(self.order_payment_api_key, self.order_payment_api_key_file)

    def payment_lookup_url(self) -> str:
        """The payment API as the order service reaches it."""
        return (self.order_payment_api_url or self.base_url(Service.PAYMENT)).rstrip("/")


def _secret(value: SecretStr | None, file: Path | None) -> str | None:
    """The secret given, else the one in `file`; None when neither is there (a file that cannot be read
    too: the service that then refuses the call names the variable to set)."""
    if value is not None:
        return value.get_secret_value()
    if file is None:
        return None
    try:
        return file.read_text().strip() or None
    except OSError:
        return None


class MissingDatabaseUrl(RuntimeError):
    """A service's migrations were run with no database URL given or configured."""


def database_env_var(service: Service) -> str:
    """The environment variable that points `service` at its database."""
    return SERVICES[service].database_url_variable


def load_settings() -> Settings:
    """Read settings from the environment now (never at import time)."""
    return Settings()
