"""The seeded workload of a source cluster: three schemas, seven tables, deterministic data.

Schemas and tables (all ``WITH SYSTEM VERSIONING``, ``utf8mb4`` / ``utf8mb4_bin``)::

    shop.customers     BIGINT PK, UNIQUE email, DECIMAL balance, JSON profile, DATETIME(6), NULLs
    shop.products      INT PK, UNIQUE sku, DECIMAL price, DOUBLE, JSON attributes, BLOB thumbnail
    shop.orders        BIGINT PK, FK customer_id -> shop.customers (RESTRICT), ENUM status
    shop.order_items   composite PK (order_id, line_no), FK order_id -> shop.orders (ON DELETE CASCADE),
                       FK product_id -> shop.products (RESTRICT)
    crm.contacts       BIGINT PK, names with accents, CJK and emoji, DATE, JSON tags
    crm.notes          BIGINT PK, FK contact_id -> crm.contacts (ON DELETE CASCADE), MEDIUMTEXT, BLOB
    metrics.events     BIGINT PK, DATETIME(6), DOUBLE, DECIMAL(18,6), JSON payload, BLOB raw

MariaDB 10.11 accepts foreign keys between system-versioned tables with RESTRICT, CASCADE and SET NULL
actions (checked against the current rows only; history rows never block a delete), so every table,
FK parents and children alike, is system-versioned.

Rows are split over the tables in fixed proportions so that the total is exactly ``rows``; the data is
a pure function of ``(seed, cluster, rows)``: the same arguments give the same bytes on every machine.
Loading uses ``LOAD DATA LOCAL INFILE`` from temporary tab-separated files.

A cluster is seeded once: the marker table ``tidbops_playground.seeded`` records it. A seed that crashed
half-way (no marker) is redone from scratch: the workload schemas are dropped first.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymysql

MARKER_DB = "tidbops_playground"
MARKER_TABLE = "seeded"
SCHEMAS: tuple[str, ...] = ("shop", "crm", "metrics")
MIN_ROWS = 50
DEFAULT_ROWS = 100_000
DEFAULT_SEED = 20240601

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin WITH SYSTEM VERSIONING"

# In creation (FK parent first) order.
DDL: dict[str, str] = {
    "shop.customers": f"""
        CREATE TABLE shop.customers (
          id BIGINT NOT NULL AUTO_INCREMENT,
          email VARCHAR(191) NOT NULL,
          full_name VARCHAR(200) NOT NULL,
          country CHAR(2) NOT NULL,
          balance DECIMAL(12,2) NOT NULL DEFAULT 0.00,
          is_active TINYINT(1) NOT NULL DEFAULT 1,
          profile JSON NULL,
          created_at DATETIME(6) NOT NULL,
          updated_at DATETIME(6) NULL,
          PRIMARY KEY (id),
          UNIQUE KEY uk_customers_email (email),
          KEY idx_customers_country (country),
          KEY idx_customers_created (created_at)
        ) {_TABLE_OPTIONS}""",
    "shop.products": f"""
        CREATE TABLE shop.products (
          id INT NOT NULL AUTO_INCREMENT,
          sku VARCHAR(32) NOT NULL,
          name VARCHAR(200) NOT NULL,
          description TEXT NULL,
          price DECIMAL(10,2) NOT NULL,
          weight_kg DOUBLE NULL,
          attributes JSON NOT NULL,
          thumbnail BLOB NULL,
          created_at DATETIME(6) NOT NULL,
          PRIMARY KEY (id),
          UNIQUE KEY uk_products_sku (sku),
          KEY idx_products_price (price)
        ) {_TABLE_OPTIONS}""",
    "shop.orders": f"""
        CREATE TABLE shop.orders (
          id BIGINT NOT NULL AUTO_INCREMENT,
          customer_id BIGINT NOT NULL,
          status ENUM('new','paid','shipped','delivered','cancelled') NOT NULL DEFAULT 'new',
          total DECIMAL(14,2) NOT NULL,
          currency CHAR(3) NOT NULL,
          placed_at DATETIME(6) NOT NULL,
          shipped_at DATETIME(6) NULL,
          note VARCHAR(500) NULL,
          PRIMARY KEY (id),
          KEY idx_orders_customer_placed (customer_id, placed_at),
          KEY idx_orders_status (status),
          CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES shop.customers (id)
            ON DELETE RESTRICT
        ) {_TABLE_OPTIONS}""",
    "shop.order_items": f"""
        CREATE TABLE shop.order_items (
          order_id BIGINT NOT NULL,
          line_no SMALLINT NOT NULL,
          product_id INT NOT NULL,
          quantity INT NOT NULL,
          unit_price DECIMAL(10,2) NOT NULL,
          discount DECIMAL(5,4) NULL,
          PRIMARY KEY (order_id, line_no),
          KEY idx_items_product (product_id),
          CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE,
          CONSTRAINT fk_items_product FOREIGN KEY (product_id) REFERENCES shop.products (id)
            ON DELETE RESTRICT
        ) {_TABLE_OPTIONS}""",
    "crm.contacts": f"""
        CREATE TABLE crm.contacts (
          id BIGINT NOT NULL AUTO_INCREMENT,
          customer_ref BIGINT NULL,
          first_name VARCHAR(100) NOT NULL,
          last_name VARCHAR(100) NOT NULL,
          email VARCHAR(191) NULL,
          phone VARCHAR(32) NULL,
          birth_date DATE NULL,
          tags JSON NOT NULL,
          created_at DATETIME(6) NOT NULL,
          PRIMARY KEY (id),
          KEY idx_contacts_name (last_name, first_name),
          KEY idx_contacts_customer (customer_ref)
        ) {_TABLE_OPTIONS}""",
    "crm.notes": f"""
        CREATE TABLE crm.notes (
          id BIGINT NOT NULL AUTO_INCREMENT,
          contact_id BIGINT NOT NULL,
          body MEDIUMTEXT NOT NULL,
          attachment BLOB NULL,
          created_at DATETIME(6) NOT NULL,
          PRIMARY KEY (id),
          KEY idx_notes_contact_created (contact_id, created_at),
          CONSTRAINT fk_notes_contact FOREIGN KEY (contact_id) REFERENCES crm.contacts (id) ON DELETE CASCADE
        ) {_TABLE_OPTIONS}""",
    "metrics.events": f"""
        CREATE TABLE metrics.events (
          id BIGINT NOT NULL AUTO_INCREMENT,
          occurred_at DATETIME(6) NOT NULL,
          source VARCHAR(64) NOT NULL,
          kind VARCHAR(32) NOT NULL,
          value DOUBLE NOT NULL,
          amount DECIMAL(18,6) NULL,
          payload JSON NOT NULL,
          raw BLOB NULL,
          PRIMARY KEY (id),
          KEY idx_events_occurred (occurred_at),
          KEY idx_events_kind_occurred (kind, occurred_at)
        ) {_TABLE_OPTIONS}""",
}

TABLES: tuple[str, ...] = tuple(DDL)

# Share of the total row count per table; order_items takes the remainder.
_SHARES: dict[str, float] = {
    "shop.customers": 0.10,
    "shop.products": 0.02,
    "shop.orders": 0.20,
    "crm.contacts": 0.08,
    "crm.notes": 0.10,
    "metrics.events": 0.10,
}

# Columns as they appear in the load files; "@x" columns are hex-encoded and UNHEX()ed on load.
_LOAD_COLUMNS: dict[str, tuple[str, ...]] = {
    "shop.customers": (
        "id", "email", "full_name", "country", "balance", "is_active", "profile", "created_at", "updated_at",
    ),
    "shop.products": (
        "id", "sku", "name", "description", "price", "weight_kg", "attributes", "@thumbnail", "created_at",
    ),
    "shop.orders": ("id", "customer_id", "status", "total", "currency", "placed_at", "shipped_at", "note"),
    "shop.order_items": ("order_id", "line_no", "product_id", "quantity", "unit_price", "discount"),
    "crm.contacts": (
        "id", "customer_ref", "first_name", "last_name", "email", "phone", "birth_date", "tags", "created_at",
    ),
    "crm.notes": ("id", "contact_id", "body", "@attachment", "created_at"),
    "metrics.events": ("id", "occurred_at", "source", "kind", "value", "amount", "payload", "@raw"),
}  # fmt: skip

FIRST_NAMES = (
    "Ana", "José", "Zoë", "Łukasz", "François", "Søren", "Ngozi", "Aarav", "Mei", "Yuki", "Olga", "Björn",
    "Chloé", "Mateo", "Amélie", "Kwame", "Ines", "Ömer", "Priya", "Sven", "伟", "芳", "陽菜", "민준", "Олег",
    "Αλέξης", "Tomás", "Leilani", "Dário", "Noor",
)  # fmt: skip
LAST_NAMES = (
    "García", "Müller", "Nowak", "O'Brien", "Dubois", "Rossi", "Kowalski", "Nakamura", "Smith", "Jensen",
    "Silva", "Yılmaz", "Novák", "Andersson", "Okafor", "Haddad", "Schröder", "Fernández", "李", "王", "佐藤",
    "김", "Иванов", "Παπαδόπουλος", "Ngũgĩ", "Đặng", "Øvergaard", "Łęcki", "Smith-Jones", "de la Cruz",
)  # fmt: skip
COUNTRIES = ("US", "DE", "FR", "JP", "CN", "KR", "BR", "IN", "PL", "SE", "NG", "ES", "IT", "GB", "TR", "VN")
CURRENCIES = ("USD", "EUR", "JPY", "CNY", "GBP", "BRL")
STATUSES = ("new", "paid", "shipped", "delivered", "cancelled")
EMOJI = ("😀", "📦", "🚚", "🔥", "✅", "❌", "💾", "🧪", "🌏", "🎉", "👍🏽", "🇯🇵", "🐬", "☕")
CJK = ("数据保护", "备份", "恢复", "バックアップ", "復元", "데이터", "백업", "集群", "注文", "顧客")
WORDS = (
    "backup", "restore", "cluster", "order", "shipment", "invoice", "refund", "customer", "ticket",
    "priority", "follow-up", "call", "meeting", "renewal", "discount", "warehouse", "delay", "crème",
    "brûlée", "naïve", "façade", "Straße", "smörgåsbord",
)  # fmt: skip
ADJECTIVES = ("Red", "Blue", "Tiny", "Huge", "Smart", "Classic", "Eco", "Pro", "Ultra", "Retro", "Nordic")
NOUNS = ("Widget", "Gadget", "Lamp", "Chair", "Kettle", "Backpack", "Notebook", "Speaker", "Drone", "Mug")
EVENT_KINDS = ("page_view", "click", "signup", "purchase", "error", "latency", "heartbeat")
EVENT_SOURCES = ("web", "ios", "android", "api", "batch", "edge-東京", "edge-fra")
TAGS = ("vip", "lead", "partner", "churn-risk", "newsletter", "b2b", "🎯", "重要")

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_YEAR_US = 365 * 24 * 3600 * 1_000_000


@dataclass(frozen=True)
class SeedResult:
    cluster: str
    seeded: bool  # False: the marker was there, nothing was done
    rows: int
    seed: int
    seconds: float
    counts: dict[str, int]


def table_counts(rows: int) -> dict[str, int]:
    """How many rows each table gets; the values sum to exactly ``rows``."""
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS}, got {rows}")
    counts = {t: max(1, int(rows * share)) for t, share in _SHARES.items()}
    counts["shop.order_items"] = rows - sum(counts.values())
    ordered = {t: counts[t] for t in TABLES}
    assert ordered["shop.order_items"] >= ordered["shop.orders"]
    return ordered


def cluster_rng(seed: int, cluster: str, purpose: str = "seed") -> random.Random:
    """A deterministic generator per (seed, cluster, purpose); str seeds hash the same on every Python."""
    return _FastRandom(f"tidbops-playground:{purpose}:{seed}:{cluster}")


# ---- text formatting for LOAD DATA (tab-separated, backslash escapes, \N for NULL) -------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})
NULL = "\\N"


def _esc(value: str) -> str:
    return value.translate(_ESCAPES)


_DAY_US = 86_400_000_000
_DAYS: dict[int, str] = {}


def _ts(us: int) -> str:
    """``EPOCH + us`` microseconds as ``YYYY-MM-DD HH:MM:SS.ffffff`` (fast: dates are cached)."""
    day, rest = divmod(us, _DAY_US)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = (EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
    secs, frac = divmod(rest, 1_000_000)
    h, secs = divmod(secs, 3600)
    m, secs = divmod(secs, 60)
    return f"{date} {h:02d}:{m:02d}:{secs:02d}.{frac:06d}"


class _FastRandom(random.Random):
    """``random.Random`` with float-based ``randrange``/``choice``: several times faster, still
    deterministic for a given seed (the tiny bias is irrelevant for test data)."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if stop is None:
            return int(self.random() * start)
        return start + int(self.random() * (stop - start))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]


def _json(obj: Any) -> str:
    return _esc(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def _text(rng: random.Random, n_words: int) -> str:
    parts = []
    for _ in range(n_words):
        r = rng.random()
        if r < 0.12:
            parts.append(rng.choice(EMOJI))
        elif r < 0.24:
            parts.append(rng.choice(CJK))
        else:
            parts.append(rng.choice(WORDS))
    return " ".join(parts)


# ---- row generators (one line of the load file per row) ----------------------------------------


def _customers(rng: random.Random, n: int) -> Iterator[str]:
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = rng.randrange(_YEAR_US)
        updated = NULL if rng.random() < 0.4 else _ts(created + rng.randrange(30 * 86_400_000_000))
        profile = (
            NULL
            if rng.random() < 0.25
            else _json(
                {
                    "lang": rng.choice(("en", "de", "ja", "zh", "ko", "pt")),
                    "newsletter": rng.random() < 0.5,
                    "score": rng.randrange(1000),
                    "nickname": f"{first}{rng.choice(EMOJI)}",
                }
            )
        )
        yield "\t".join(
            (
                str(i),
                f"customer{i}@example.com",
                _esc(f"{first} {last}"),
                rng.choice(COUNTRIES),
                f"{rng.randrange(-50_000, 5_000_000) / 100:.2f}",
                "1" if rng.random() < 0.9 else "0",
                profile,
                _ts(created),
                updated,
            )
        )


def _products(rng: random.Random, n: int) -> Iterator[str]:
    for i in range(1, n + 1):
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(CJK)}"
        yield "\t".join(
            (
                str(i),
                f"SKU-{i:07d}",
                _esc(name),
                NULL if rng.random() < 0.2 else _esc(_text(rng, rng.randrange(5, 25))),
                f"{rng.randrange(99, 250_000) / 100:.2f}",
                NULL if rng.random() < 0.15 else repr(round(rng.uniform(0.01, 40.0), 3)),
                _json({"color": rng.choice(("red", "blue", "黒", "white")), "stock": rng.randrange(500)}),
                NULL if rng.random() < 0.5 else rng.randbytes(rng.randrange(16, 200)).hex(),
                _ts(rng.randrange(_YEAR_US)),
            )
        )


def _orders(rng: random.Random, n: int, customers: int) -> Iterator[str]:
    for i in range(1, n + 1):
        placed = rng.randrange(_YEAR_US)
        status = rng.choice(STATUSES)
        shipped = _ts(placed + rng.randrange(1, 5 * 86_400_000_000)) if status in ("shipped", "delivered") else NULL
        yield "\t".join(
            (
                str(i),
                str(rng.randrange(1, customers + 1)),
                status,
                f"{rng.randrange(100, 10_000_000) / 100:.2f}",
                rng.choice(CURRENCIES),
                _ts(placed),
                shipped,
                NULL if rng.random() < 0.7 else _esc(_text(rng, rng.randrange(2, 10))),
            )
        )


def _order_items(rng: random.Random, n: int, orders: int, products: int) -> Iterator[str]:
    # every order gets one line; the remaining lines go to random orders
    lines = [1] * orders
    for _ in range(n - orders):
        lines[rng.randrange(orders)] += 1
    for order_id, count in enumerate(lines, start=1):
        for line_no in range(1, count + 1):
            yield "\t".join(
                (
                    str(order_id),
                    str(line_no),
                    str(rng.randrange(1, products + 1)),
                    str(rng.randrange(1, 10)),
                    f"{rng.randrange(99, 100_000) / 100:.2f}",
                    NULL if rng.random() < 0.6 else f"{rng.randrange(0, 5000) / 10000:.4f}",
                )
            )


def _contacts(rng: random.Random, n: int, customers: int) -> Iterator[str]:
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        days = rng.randrange(6570, 32000)
        birth = NULL if rng.random() < 0.3 else (EPOCH - timedelta(days=days)).strftime("%Y-%m-%d")
        yield "\t".join(
            (
                str(i),
                NULL if rng.random() < 0.3 else str(rng.randrange(1, customers + 1)),
                _esc(first),
                _esc(last),
                NULL if rng.random() < 0.2 else f"contact{i}@example.org",
                NULL if rng.random() < 0.3 else f"+{rng.randrange(1, 99)} {rng.randrange(10**8, 10**9)}",
                birth,
                _json(rng.sample(TAGS, rng.randrange(0, 4))),
                _ts(rng.randrange(_YEAR_US)),
            )
        )


def _notes(rng: random.Random, n: int, contacts: int) -> Iterator[str]:
    for i in range(1, n + 1):
        body = _text(rng, rng.randrange(3, 30))
        if rng.random() < 0.2:
            body += "\n-- " + _text(rng, 3) + "\t(tab)"
        yield "\t".join(
            (
                str(i),
                str(rng.randrange(1, contacts + 1)),
                _esc(body),
                NULL if rng.random() < 0.8 else rng.randbytes(rng.randrange(1, 300)).hex(),
                _ts(rng.randrange(_YEAR_US)),
            )
        )


def _events(rng: random.Random, n: int) -> Iterator[str]:
    for i in range(1, n + 1):
        kind = rng.choice(EVENT_KINDS)
        yield "\t".join(
            (
                str(i),
                _ts(rng.randrange(_YEAR_US)),
                _esc(rng.choice(EVENT_SOURCES)),
                kind,
                repr(round(rng.expovariate(0.01), 6)),
                NULL if kind != "purchase" else f"{rng.randrange(0, 10**9) / 10**6:.6f}",
                _json({"session": rng.randrange(10**6), "ok": rng.random() < 0.95, "path": f"/p/{rng.randrange(100)}"}),
                NULL if rng.random() < 0.9 else rng.randbytes(rng.randrange(1, 64)).hex(),
            )
        )


def generate(cluster: str, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> dict[str, list[str]]:
    """The load-file lines per table. Each table has its own generator so tables are independent."""
    counts = table_counts(rows)

    def rng(table: str) -> random.Random:
        return cluster_rng(seed, f"{cluster}/{table}")

    c = counts
    gens: dict[str, Callable[[], Iterator[str]]] = {
        "shop.customers": lambda: _customers(rng("shop.customers"), c["shop.customers"]),
        "shop.products": lambda: _products(rng("shop.products"), c["shop.products"]),
        "shop.orders": lambda: _orders(rng("shop.orders"), c["shop.orders"], c["shop.customers"]),
        "shop.order_items": lambda: _order_items(
            rng("shop.order_items"), c["shop.order_items"], c["shop.orders"], c["shop.products"]
        ),
        "crm.contacts": lambda: _contacts(rng("crm.contacts"), c["crm.contacts"], c["shop.customers"]),
        "crm.notes": lambda: _notes(rng("crm.notes"), c["crm.notes"], c["crm.contacts"]),
        "metrics.events": lambda: _events(rng("metrics.events"), c["metrics.events"]),
    }
    return {t: list(gens[t]()) for t in TABLES}


def fingerprint(data: dict[str, list[str]]) -> str:
    """A digest of generated data (for determinism checks)."""
    h = hashlib.sha256()
    for table in TABLES:
        h.update(table.encode())
        for line in data[table]:
            h.update(line.encode())
            h.update(b"\n")
    return h.hexdigest()


# ---- the database side ---------------------------------------------------------------------------


def ensure_marker_table(cur: pymysql.cursors.Cursor) -> None:
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {MARKER_DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    cur.execute(
        f"""CREATE TABLE IF NOT EXISTS {MARKER_DB}.{MARKER_TABLE} (
              cluster VARCHAR(64) NOT NULL PRIMARY KEY,
              seed BIGINT NOT NULL,
              `rows` BIGINT NOT NULL,
              seeded_at DATETIME(6) NOT NULL,
              seconds DOUBLE NOT NULL
            ) ENGINE=InnoDB"""
    )


def seed_marker(conn: pymysql.connections.Connection) -> dict[str, Any] | None:  # type: ignore[type-arg]
    """The marker row (seed, rows, seeded_at) when the cluster was seeded, else None."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (MARKER_DB, MARKER_TABLE),
        )
        row = cur.fetchone()
        if not row or not row[0]:
            return None
        cur.execute(f"SELECT cluster, seed, `rows`, seeded_at FROM {MARKER_DB}.{MARKER_TABLE} LIMIT 1")
        found = cur.fetchone()
    if not found:
        return None
    return {"cluster": found[0], "seed": int(found[1]), "rows": int(found[2]), "seeded_at": found[3]}


def create_schema(cur: pymysql.cursors.Cursor) -> None:
    """Drop and recreate the workload schemas (empty tables)."""
    for schema in SCHEMAS:
        cur.execute(f"DROP DATABASE IF EXISTS {schema}")
    for schema in SCHEMAS:
        cur.execute(f"CREATE DATABASE {schema} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    for ddl in DDL.values():
        cur.execute(ddl)


def _load_sql(table: str, path: Path) -> tuple[str, tuple[str]]:
    cols = _LOAD_COLUMNS[table]
    col_list = ", ".join(c if c.startswith("@") else f"`{c}`" for c in cols)
    sets = [f"`{c[1:]}` = UNHEX({c})" for c in cols if c.startswith("@")]
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
        f"({col_list})" + (f" SET {', '.join(sets)}" if sets else "")
    )
    return sql, (str(path),)


def seed_cluster(
    conn: pymysql.connections.Connection,  # type: ignore[type-arg]
    cluster: str,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    tmp_dir: Path | None = None,
    force: bool = False,
) -> SeedResult:
    """Seed one source cluster unless its marker says it was seeded already.

    ``conn`` must have been opened with ``local_infile=True`` and autocommit on.
    """
    started = time.monotonic()
    if not force and (marker := seed_marker(conn)) is not None:
        return SeedResult(cluster, False, marker["rows"], marker["seed"], 0.0, {})
    counts = table_counts(rows)
    data = generate(cluster, rows, seed)
    with conn.cursor() as cur:
        ensure_marker_table(cur)
        cur.execute(f"DELETE FROM {MARKER_DB}.{MARKER_TABLE}")
        create_schema(cur)
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        with tempfile.TemporaryDirectory(prefix="seed-", dir=tmp_dir) as tmp:
            for table in TABLES:
                path = Path(tmp) / f"{table}.tsv"
                with open(path, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write("\n".join(data[table]))
                    fh.write("\n")
                sql, args = _load_sql(table, path)
                cur.execute(sql, args)
                cur.execute("SHOW WARNINGS LIMIT 5")
                warnings = cur.fetchall()
                if warnings:
                    raise RuntimeError(f"seeding {cluster} {table}: LOAD DATA warnings {warnings}")
        cur.execute("SET SESSION foreign_key_checks = 1, unique_checks = 1")
        seconds = time.monotonic() - started
        cur.execute(
            f"INSERT INTO {MARKER_DB}.{MARKER_TABLE} (cluster, seed, `rows`, seeded_at, seconds) "
            "VALUES (%s, %s, %s, UTC_TIMESTAMP(6), %s)",
            (cluster, seed, rows, seconds),
        )
    return SeedResult(cluster, True, rows, seed, seconds, counts)


def main(argv: list[str] | None = None) -> int:
    """``python -m tidbops_playground.seed --home H --cluster C [--rows N] [--seed S] [--force]``."""
    import argparse

    from tidbops_playground.registry import load_registry

    parser = argparse.ArgumentParser(prog="python -m tidbops_playground.seed")
    parser.add_argument("--home", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--force", action="store_true", help="reseed even when the marker is there")
    args = parser.parse_args(argv)
    home = Path(args.home)
    entry = load_registry(home).clusters.get(args.cluster)
    if entry is None:
        parser.error(f"no cluster {args.cluster!r} in the registry of {home}")
    conn = pymysql.connect(
        host=entry.sql_host,
        port=entry.sql_port,
        user=entry.sql_user,
        password=entry.sql_password,
        charset="utf8mb4",
        autocommit=True,
        local_infile=True,
        connect_timeout=5,
        ssl=entry.sql_ssl(),
    )
    try:
        (home / "tmp").mkdir(exist_ok=True)
        result = seed_cluster(
            conn, args.cluster, rows=args.rows, seed=args.seed, tmp_dir=home / "tmp", force=args.force
        )
    finally:
        conn.close()
    verb = "seeded" if result.seeded else "already seeded:"
    print(f"{verb} {result.rows} rows (seed {result.seed}) in {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
