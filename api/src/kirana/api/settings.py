"""Validated configuration for every Kirana process.

Built once at start-up (`Settings()` reads `KIRANA_*` environment variables and `.env`) and
passed in: `create_app(settings)`, the CLI and the workers never read an import-time global.
Each field `x` is read from the environment variable `KIRANA_X`. Fields that belong together
share a prefix (`db_*`, `sms_*`) and their users read them as one group (`settings.db`,
`settings.sms`), so the environment variables stay flat and unchanged.

Longer than 400 lines on purpose: one class is the one list of every `KIRANA_*` variable, its
default, bounds and meaning, which the README's table mirrors; splitting it would scatter that
list over the domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "password", "dev-secret-change-me", "xxx", "todo"}
)
DEV_SECRET = "dev-secret-change-me"


class Environment(StrEnum):
    development = "development"
    test = "test"
    staging = "staging"
    production = "production"


@dataclass(frozen=True)
class LoyaltySettings:
    """The loyalty programme's knobs (KIRANA_LOYALTY_*)."""

    points_per_100_rupees: int = 10
    point_value_paise: int = 10
    redeem_max_percent: int = 0
    expiry_months: int = 12


@dataclass(frozen=True)
class DatabaseSettings:
    """The PostgreSQL connection of one process (`KIRANA_DATABASE_URL`, `KIRANA_DB_*`)."""

    url: str
    pool_size: int
    max_overflow: int
    statement_timeout_ms: int
    hot_pool_size: int


@dataclass(frozen=True)
class SmsSettings:
    """How text messages are sent (`KIRANA_SMS_*`): "console" logs them, "http" posts them to a
    DLT-registered gateway, at most `daily_cap` a day to one number."""

    provider: str
    gateway_url: str
    gateway_token: SecretStr
    sender_id: str
    dlt_entity_id: str
    dlt_template_id: str
    daily_cap: int


@dataclass(frozen=True)
class EmailSettings:
    """How email is sent (`KIRANA_EMAIL_*`): "console" logs it, "smtp" hands it to an SMTP
    server (port 587 with STARTTLS, or 465 with TLS from the start, as `tls` says)."""

    provider: str
    from_address: str
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: SecretStr
    tls: str  # "starttls", "tls" or "none" (a relay on the same host or network only)
    timeout_s: float


class Settings(BaseSettings):
    """Everything configurable; field `x` comes from `KIRANA_X` (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_prefix="KIRANA_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    environment: Environment = Environment.development
    # Database and Redis. Empty means "start the embedded servers" for `kirana run`; the API
    # itself refuses to start without them.
    database_url: str = ""
    redis_url: str = ""
    # Per process; enough for the requests one worker serves at once (a pool that overflows
    # opens and closes a connection per request).
    db_pool_size: Annotated[int, Field(ge=1, le=200)] = 20
    db_max_overflow: Annotated[int, Field(ge=0, le=200)] = 10
    # Plain asyncpg connections per process for single hot statements (webhooks, leaderboard names;
    # `Database.hot`), opened on first use.
    db_hot_pool_size: Annotated[int, Field(ge=1, le=50)] = 4
    db_statement_timeout_ms: Annotated[int, Field(ge=0)] = 15_000
    # Redis connections per process; past it a command waits (`redis_pool_wait_s`) for one.
    redis_max_connections: Annotated[int, Field(ge=4, le=10_000)] = 200
    redis_pool_wait_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    # HTTP
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Prometheus `/metrics` on a port of its own (0: not served), so that the public port, and the
    # ingress in front of it, never expose it. Same bind address as the API.
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    # Addresses whose X-Forwarded-For / X-Forwarded-Proto are believed (the ingress or load
    # balancer): comma-separated IPs or CIDRs, or "*" when only the proxy can reach the pods.
    # Without it every client looks like the proxy, and per-IP rate limits hit the whole shop.
    forwarded_allow_ips: str = "127.0.0.1"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    cors_origins: list[str] = []
    # The OpenAPI document and its browsable UI: "ui" serves /openapi.json and /docs, "schema"
    # only /openapi.json (for tooling), "off" neither. Empty: "off" in production, else "ui".
    api_docs: str = ""
    # Graceful shutdown: after SIGTERM, /readyz fails for `drain_seconds` while traffic is still
    # served (load balancers notice), then in-flight requests get `shutdown_grace_seconds`.
    drain_seconds: Annotated[float, Field(ge=0, le=300)] = 5.0
    shutdown_grace_seconds: Annotated[float, Field(ge=0, le=600)] = 25.0

    # Real time (`GET /v1/ws`, see docs/realtime.md). Browsers may open sockets only from
    # `ws_allowed_origins` (empty: the CORS origins); clients without an Origin header are not
    # browsers and are let through to the credential check.
    ws_allowed_origins: list[str] = []
    ws_ticket_ttl_s: Annotated[int, Field(ge=5, le=300)] = 30
    ws_max_per_user: Annotated[int, Field(ge=1, le=1000)] = 10
    ws_send_queue: Annotated[int, Field(ge=8, le=100_000)] = 256  # frames; full: slow consumer
    ws_max_frame_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 65_536
    ws_ping_interval_s: Annotated[float, Field(gt=0, le=60)] = 10.0  # dead socket gone in 2x
    ws_per_message_deflate: bool = False  # about 300 KiB per socket with uvicorn's zlib defaults
    realtime_history_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    realtime_history_ttl_s: Annotated[int, Field(ge=10, le=86_400)] = 600
    # The workers' outbox relay wakes on the outbox's NOTIFY (sent at commit); this poll only
    # catches what a lost listening connection missed.
    outbox_poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0

    # Delivery tracking (`kirana.api.delivery`, docs/delivery.md).
    delivery_position_interval_s: Annotated[float, Field(ge=0.1, le=60)] = 0.9  # per delivery
    delivery_position_retention_s: Annotated[int, Field(ge=60)] = 24 * 3600
    delivery_speed_kmh: Annotated[float, Field(gt=1, le=120)] = 18.0  # city two-wheeler average

    # Secrets
    secret_key: SecretStr = SecretStr(DEV_SECRET)

    # Access: accounts, sessions, two-factor, abuse limits (see kirana.api.accounts / access).
    # Fernet keys (urlsafe base64, 32 bytes) encrypting secrets at rest (TOTP seeds, signing keys);
    # the first encrypts, all decrypt, so a new key is added in front to rotate. Empty: derived
    # from KIRANA_SECRET_KEY.
    encryption_keys: list[SecretStr] = []
    access_token_ttl_s: Annotated[int, Field(ge=30, le=3600)] = 600
    session_ttl_s: Annotated[int, Field(ge=300)] = 30 * 24 * 3600
    signing_key_rotation_s: Annotated[int, Field(ge=3600)] = 7 * 24 * 3600
    step_up_ttl_s: Annotated[int, Field(ge=30, le=3600)] = 600
    permission_cache_ttl_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    password_reset_ttl_s: Annotated[int, Field(ge=300, le=86400)] = 1800
    # SMS: "console" logs messages (development); "http" posts them to a gateway.
    sms_provider: str = "console"
    sms_gateway_url: str = ""
    sms_gateway_token: SecretStr = SecretStr("")
    sms_sender_id: str = "KIRANA"
    sms_dlt_entity_id: str = ""
    sms_dlt_template_id: str = ""
    sms_daily_cap: Annotated[int, Field(ge=1)] = 10
    email_provider: str = "console"
    email_from_address: str = "Kirana <no-reply@localhost>"
    email_smtp_host: str = ""
    email_smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    email_smtp_username: str = ""
    email_smtp_password: SecretStr = SecretStr("")
    email_tls: str = "starttls"
    email_timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0

    # Logging
    log_level: str = "INFO"
    log_json: bool = True

    # Local state for `kirana run` (embedded servers) and backups.
    data_dir: Path = Path(".local")
    backup_dir: Path | None = None
    migrations_dir: Path | None = None
    pg_bin_dir: Path | None = None

    # Demo data
    seed_demo_data: bool = True
    seed_catalog_products: Annotated[int, Field(ge=0, le=1_000_000)] = 3000

    # Commerce: carts, checkout, idempotency
    cart_max_line_quantity: Annotated[int, Field(ge=1, le=10_000)] = 50
    cart_max_lines: Annotated[int, Field(ge=1, le=1000)] = 100
    order_reservation_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 15
    # What one customer may hold unpaid at once (orders.unpaid): orders, units reserved by them,
    # and units of one item reserved by them; 0 turns a cap off.
    order_max_unpaid: Annotated[int, Field(ge=0, le=1000)] = 3
    order_max_unpaid_units: Annotated[int, Field(ge=0, le=1_000_000)] = 200
    order_max_unpaid_units_per_item: Annotated[int, Field(ge=0, le=1_000_000)] = 50
    # Unpaid orders at once from one client address, all accounts together (0: off). Generous:
    # mobile carriers put many shoppers behind one address (CGNAT). Only global addresses count.
    order_max_unpaid_per_ip: Annotated[int, Field(ge=0, le=100_000)] = 20
    default_store_code: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9\-]{0,39}$")] = "main"
    idempotency_ttl_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 24
    # Concurrent `POST /v1/orders` requests share transactions, at most this many orders in one
    # (group commit, see orders.batch); 0 places every order in its own transaction.
    order_batch_max: Annotated[int, Field(ge=0, le=1000)] = 64
    # Public listing pages are cached per process, emptied by PostgreSQL notifications of every
    # committed catalog change; this TTL is only a safety net on top (0: no cache).
    catalog_listing_cache_s: Annotated[float, Field(ge=0, le=3600)] = 60.0
    # Search answers likewise (kirana.api.search.router): emptied by the same notifications, which
    # the search documents and synonym groups send too; 0: every search runs its statement.
    search_cache_s: Annotated[float, Field(ge=0, le=3600)] = 60.0

    # Payments (kirana.api.payments). No key id: `kirana run` starts the fake Razorpay
    # (kirana.api.devrazorpay) and points these at it; with keys set, the real Razorpay is used.
    razorpay_key_id: str = ""
    razorpay_key_secret: SecretStr = SecretStr("")
    # Webhook secrets: the current one, and during a rotation the previous one (both verify).
    razorpay_webhook_secret: SecretStr = SecretStr("")
    razorpay_webhook_secret_previous: SecretStr = SecretStr("")
    razorpay_base_url: str = "https://api.razorpay.com"
    # Every SDK call gets this timeout (the SDK sets none); the SDK's retries are never enabled.
    razorpay_timeout_s: Annotated[float, Field(gt=0, le=60)] = 8.0
    # Seconds a client is told to wait (Retry-After) when Razorpay is slow or failing.
    payments_retry_after_s: Annotated[int, Field(ge=1, le=600)] = 5
    # NPCI's per-transaction UPI limit for ordinary merchants (₹1,00,000), in paise.
    payments_upi_limit_paise: Annotated[int, Field(ge=100)] = 1_00_000_00
    # UPI Collect only for merchants still allowed it; intent and QR are always offered.
    payments_upi_collect_enabled: bool = False
    # Loyalty (read as a group: settings.loyalty). Base earn rate in points per ₹100 before tax,
    # what a point is worth at checkout, the largest share of an order points may pay, and how
    # many months an earning lives before the expiry job takes what is left of it.
    loyalty_points_per_100_rupees: Annotated[int, Field(ge=0, le=10_000)] = 10
    loyalty_point_value_paise: Annotated[int, Field(ge=1, le=10_000)] = 10
    # The share of an order's total points may pay; 0 (the default) turns redemption off. Payments
    # charge the total minus the points' value from this release on, but a replica of an older
    # release (during the rolling deploy, or after a rollback) charges the whole total, so it
    # stays off until the shop turns it on (20 is the intended share). Docs: loyalty.md.
    loyalty_redeem_max_percent: Annotated[int, Field(ge=0, le=100)] = 0
    loyalty_expiry_months: Annotated[int, Field(ge=1, le=120)] = 12
    # Cash on delivery: offered up to this order total (₹10,000), at these pincodes or pincode
    # prefixes (comma-separated; empty: everywhere the shop delivers).
    payments_cod_enabled: bool = True
    payments_cod_limit_paise: Annotated[int, Field(ge=0)] = 10_000_00
    payments_cod_pincodes: str = ""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://", "postgresql+")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("api_docs")
    @classmethod
    def _known_docs_mode(cls, value: str) -> str:
        if value not in {"", "ui", "schema", "off"}:
            raise ValueError("must be ui, schema or off")
        return value

    @field_validator("sms_provider")
    @classmethod
    def _known_sms_provider(cls, value: str) -> str:
        if value not in {"console", "http"}:
            raise ValueError("must be console or http")
        return value

    @field_validator("email_provider")
    @classmethod
    def _known_email_provider(cls, value: str) -> str:
        if value not in {"console", "smtp"}:
            raise ValueError("must be console or smtp")
        return value

    @field_validator("email_tls")
    @classmethod
    def _known_email_tls(cls, value: str) -> str:
        if value not in {"starttls", "tls", "none"}:
            raise ValueError("must be starttls, tls or none")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        if self.sms_provider == "http" and not self.sms_gateway_url:
            raise ValueError("KIRANA_SMS_GATEWAY_URL is required when KIRANA_SMS_PROVIDER=http")
        if self.email_provider == "smtp" and not self.email_smtp_host:
            raise ValueError("KIRANA_EMAIL_SMTP_HOST is required when KIRANA_EMAIL_PROVIDER=smtp")
        if self.environment in (Environment.staging, Environment.production):
            secret = self.secret_key.get_secret_value()
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError(
                    f"KIRANA_SECRET_KEY is a placeholder or shorter than 32 characters; "
                    f"set a real secret in {self.environment.value}"
                )
        return self

    @property
    def db(self) -> DatabaseSettings:
        return DatabaseSettings(
            url=self.database_url,
            pool_size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            statement_timeout_ms=self.db_statement_timeout_ms,
            hot_pool_size=self.db_hot_pool_size,
        )

    @property
    def sms(self) -> SmsSettings:
        return SmsSettings(
            provider=self.sms_provider,
            gateway_url=self.sms_gateway_url,
            gateway_token=self.sms_gateway_token,
            sender_id=self.sms_sender_id,
            dlt_entity_id=self.sms_dlt_entity_id,
            dlt_template_id=self.sms_dlt_template_id,
            daily_cap=self.sms_daily_cap,
        )

    @property
    def email(self) -> EmailSettings:
        return EmailSettings(
            provider=self.email_provider,
            from_address=self.email_from_address,
            smtp_host=self.email_smtp_host,
            smtp_port=self.email_smtp_port,
            smtp_username=self.email_smtp_username,
            smtp_password=self.email_smtp_password,
            tls=self.email_tls,
            timeout_s=self.email_timeout_s,
        )

    @property
    def loyalty(self) -> LoyaltySettings:
        return LoyaltySettings(
            points_per_100_rupees=self.loyalty_points_per_100_rupees,
            point_value_paise=self.loyalty_point_value_paise,
            redeem_max_percent=self.loyalty_redeem_max_percent,
            expiry_months=self.loyalty_expiry_months,
        )

    @property
    def cod_pincodes(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.payments_cod_pincodes.split(",") if p.strip())

    def payments_problem(self) -> str | None:
        """Why the API or a worker must not start with these Razorpay settings (one line), or
        None. Outside development and test, empty keys or webhook secret would let `kirana run`'s
        fake stand in or accept webhooks signed with an empty secret, so they are refused."""
        if self.is_development:
            return None
        empty = [
            name
            for name, value in (
                ("KIRANA_RAZORPAY_KEY_ID", self.razorpay_key_id),
                ("KIRANA_RAZORPAY_KEY_SECRET", self.razorpay_key_secret.get_secret_value()),
                ("KIRANA_RAZORPAY_WEBHOOK_SECRET", self.razorpay_webhook_secret.get_secret_value()),
            )
            if not value.strip()
        ]
        if empty:
            where = self.environment.value
            return f"{', '.join(empty)} empty in {where}: set Razorpay's keys and webhook secret"
        return None

    @property
    def is_development(self) -> bool:
        return self.environment in (Environment.development, Environment.test)

    @property
    def docs_mode(self) -> str:
        """`api_docs`, with production's default (off) applied."""
        return self.api_docs or ("off" if self.environment is Environment.production else "ui")

    @property
    def resolved_backup_dir(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"


class SettingsError(Exception):
    """Raised with one readable line per invalid setting."""


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning pydantic's report into one line per bad environment variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            name = f"KIRANA_{loc.upper()}" if loc else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
