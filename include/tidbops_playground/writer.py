"""The workload writer: a steady stream of small transactions against a seeded source cluster.

Each transaction is one of a weighted mix (new order with its lines, order status change, customer
update, new customer, price change, new event, new contact / note, note edit, and deletes of orders,
notes, events and customers without orders), always respecting the foreign keys: order lines are
written after their order and reference existing products, orders reference existing customers, and a
customer is only deleted when it has no orders. Every transaction commits, so the system-versioned
tables accumulate history that point-in-time restores can be checked against.

Writes can be frozen: :func:`pause_writer` drops a flag file (``writer.paused`` in the home, or
``clusters/<name>/writer.paused``) and waits until every running writer has acknowledged it, so that
when it returns no further writer transaction commits until :func:`resume_writer`.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymysql

from tidbops_playground.seed import CJK, COUNTRIES, CURRENCIES, EMOJI, EVENT_KINDS, EVENT_SOURCES, WORDS

PAUSE_FILE = "writer.paused"
ACK_FILE = "writer.ack"
DEFAULT_TPS = 20.0


def _pause_path(home: Path, cluster: str | None) -> Path:
    return home / PAUSE_FILE if cluster is None else home / "clusters" / cluster / PAUSE_FILE


def _ack_path(home: Path, cluster: str) -> Path:
    return home / "clusters" / cluster / ACK_FILE


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def pause_token(home: Path, cluster: str) -> str | None:
    """The token of the pause in force for ``cluster`` (global or per cluster), or None."""
    for path in (_pause_path(home, None), _pause_path(home, cluster)):
        try:
            return path.read_text().strip() or "paused"
        except OSError:
            continue
    return None


def writer_paused(home: Path, cluster: str) -> bool:
    return pause_token(home, cluster) is not None


def pause_writer(
    home: Path,
    cluster: str | None = None,
    *,
    wait: bool = True,
    timeout: float = 15.0,
    active: Callable[[], list[str]] | None = None,
) -> None:
    """Freeze the writer (all clusters, or one); with ``wait``, return once running writers acknowledged.

    ``active`` lists the clusters whose writer is running (the manager passes the daemon's view); writers
    that are not running need no acknowledgement.
    """
    token = secrets.token_hex(8)
    _write_atomic(_pause_path(home, cluster), token)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while True:
        running = active() if active else []
        targets = [c for c in running if cluster is None or c == cluster]
        pending = [c for c in targets if _read(_ack_path(home, c)) != pause_token(home, c)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"writers for {pending} did not acknowledge the pause within {timeout}s")
        time.sleep(0.05)


def resume_writer(home: Path, cluster: str | None = None) -> None:
    """Lift the pause (all clusters: both the global flag and every per-cluster flag)."""
    _pause_path(home, cluster).unlink(missing_ok=True)
    if cluster is None:
        for flag in (home / "clusters").glob(f"*/{PAUSE_FILE}"):
            flag.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


@dataclass
class WriterStats:
    cluster: str
    tps: float
    transactions: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    errors: int = 0
    paused: bool = False
    connected: bool = False
    last_error: str | None = None
    last_commit_at: float | None = None
    by_kind: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Ids:
    """Upper bounds of the id ranges, refreshed from the database after (re)connecting."""

    customers: int = 1
    products: int = 1
    orders: int = 1
    contacts: int = 1
    notes: int = 1
    events: int = 1


class Writer:
    """Writes to one cluster at ``tps`` transactions per second until ``stop`` is set.

    ``connect`` returns a fresh autocommit connection to the cluster (it is called again after errors,
    so it should read the current port from the registry). Errors (server down, lost connection) are
    counted and retried with backoff; they never end the loop.
    """

    def __init__(
        self,
        home: Path,
        cluster: str,
        connect: Callable[[], pymysql.connections.Connection],  # type: ignore[type-arg]
        *,
        tps: float = DEFAULT_TPS,
        seed: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.home = home
        self.cluster = cluster
        self._connect = connect
        self.stats = WriterStats(cluster=cluster, tps=tps)
        self.rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
        self._log = log or (lambda _msg: None)
        self._conn: pymysql.connections.Connection | None = None  # type: ignore[type-arg]
        self._ids = _Ids()
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self.kinds: list[tuple[str, int, Callable[[pymysql.cursors.Cursor], None]]] = [
            ("new_order", 30, self._new_order),
            ("order_status", 18, self._order_status),
            ("customer_update", 8, self._customer_update),
            ("new_customer", 4, self._new_customer),
            ("price_change", 3, self._price_change),
            ("new_event", 14, self._new_event),
            ("new_contact_note", 6, self._new_contact_note),
            ("note_edit", 5, self._note_edit),
            ("delete_order", 5, self._delete_order),
            ("delete_note", 3, self._delete_note),
            ("delete_events", 2, self._delete_events),
            ("delete_customer", 2, self._delete_customer),
        ]
        self._weights = [w for _, w, _ in self.kinds]

    # ---- loop ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        interval = 1.0 / self.stats.tps if self.stats.tps > 0 else 1.0
        next_at = time.monotonic()
        backoff = 0.5
        while not stop.is_set():
            token = pause_token(self.home, self.cluster)
            if token is not None:
                self.stats.paused = True
                if _read(_ack_path(self.home, self.cluster)) != token:
                    _write_atomic(_ack_path(self.home, self.cluster), token)
                stop.wait(0.05)
                next_at = time.monotonic()
                continue
            self.stats.paused = False
            if self.stats.tps <= 0:
                stop.wait(0.5)
                continue
            delay = next_at - time.monotonic()
            if delay > 0:
                stop.wait(delay)
                continue
            next_at = max(next_at + interval, time.monotonic() - 1.0)
            try:
                self.step()
                backoff = 0.5
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as exc:
                self._fail(exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                next_at = time.monotonic()
            except pymysql.err.MySQLError as exc:  # a data conflict; the next transaction differs
                self._fail(exc, disconnect=False)
            except Exception as exc:  # never let one bad transaction end the writer
                self._fail(exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.close()

    def _fail(self, exc: Exception, *, disconnect: bool = True) -> None:
        self.stats.errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        key = type(exc).__name__ + (str(exc.args[0]) if exc.args else "")
        now = time.monotonic()
        if now - self._last_logged.get(key, -1e9) > 30:
            self._last_logged[key] = now
            self._log(f"writer {self.cluster}: {self.stats.last_error}")
        if disconnect:
            self.close()
        elif self._conn is not None:
            try:
                self._conn.rollback()
            except pymysql.err.MySQLError:
                self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: S110 (already broken)
                pass
        self._conn = None
        self.stats.connected = False

    def _connection(self) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        if self._conn is None:
            conn = self._connect()
            self._conn = conn
            self.stats.connected = True
            self._refresh_ids()
        return self._conn

    def _refresh_ids(self) -> None:
        assert self._conn is not None
        with self._conn.cursor() as cur:
            for attr, table in (
                ("customers", "shop.customers"),
                ("products", "shop.products"),
                ("orders", "shop.orders"),
                ("contacts", "crm.contacts"),
                ("notes", "crm.notes"),
                ("events", "metrics.events"),
            ):
                cur.execute(f"SELECT COALESCE(MAX(id), 1) FROM {table}")
                row = cur.fetchone()
                setattr(self._ids, attr, max(1, int(row[0]) if row else 1))

    def step(self) -> str:
        """Run one transaction of a randomly chosen kind; return the kind."""
        conn = self._connection()
        name, _, fn = self.rng.choices(self.kinds, weights=self._weights)[0]
        conn.begin()
        try:
            with conn.cursor() as cur:
                fn(cur)
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: S110 (the connection is broken; the caller reconnects)
                pass
            raise
        self.stats.transactions += 1
        self.stats.by_kind[name] = self.stats.by_kind.get(name, 0) + 1
        self.stats.last_commit_at = time.time()
        return name

    # ---- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _now() -> str:
        return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _text(self, n: int) -> str:
        r = self.rng
        return " ".join(r.choice(WORDS + EMOJI + CJK) for _ in range(n))

    def _pick(self, cur: pymysql.cursors.Cursor, table: str, upper: int, extra: str = "") -> int | None:
        """An existing id at or after a random point (wrapping to the start), or None."""
        start = self.rng.randrange(1, max(2, upper + 1))
        for sql, arg in (
            (f"SELECT id FROM {table} WHERE id >= %s {extra} ORDER BY id LIMIT 1", start),
            (f"SELECT id FROM {table} WHERE id >= %s {extra} ORDER BY id LIMIT 1", 0),
        ):
            cur.execute(sql, (arg,))
            row = cur.fetchone()
            if row:
                return int(row[0])
        return None

    def _count(self, kind: str, n: int) -> None:
        setattr(self.stats, kind, getattr(self.stats, kind) + max(0, n))

    # ---- transaction kinds ----------------------------------------------------------------------

    def _new_order(self, cur: pymysql.cursors.Cursor) -> None:
        r = self.rng
        customer = self._pick(cur, "shop.customers", self._ids.customers)
        if customer is None:
            return self._new_customer(cur)
        n_lines = r.randint(1, 4)
        lines = []
        for line_no in range(1, n_lines + 1):
            product = self._pick(cur, "shop.products", self._ids.products)
            if product is None:
                return None
            lines.append((line_no, product, r.randint(1, 9), r.randrange(99, 100_000) / 100))
        total = round(sum(q * p for _, _, q, p in lines), 2)
        cur.execute(
            "INSERT INTO shop.orders (customer_id, status, total, currency, placed_at, note) "
            "VALUES (%s, 'new', %s, %s, %s, %s)",
            (customer, total, r.choice(CURRENCIES), self._now(), None if r.random() < 0.7 else self._text(4)),
        )
        order_id = cur.lastrowid
        self._ids.orders = max(self._ids.orders, int(order_id))
        cur.executemany(
            "INSERT INTO shop.order_items (order_id, line_no, product_id, quantity, unit_price, discount) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(order_id, ln, p, q, price, None if r.random() < 0.6 else 0.05) for ln, p, q, price in lines],
        )
        self._count("inserts", 1 + len(lines))
        return None

    def _order_status(self, cur: pymysql.cursors.Cursor) -> None:
        order = self._pick(cur, "shop.orders", self._ids.orders, "AND status IN ('new','paid','shipped')")
        if order is None:
            return
        cur.execute(
            "UPDATE shop.orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' "
            "ELSE 'delivered' END, shipped_at = IF(status = 'paid', %s, shipped_at) WHERE id = %s",
            (self._now(), order),
        )
        self._count("updates", cur.rowcount)

    def _customer_update(self, cur: pymysql.cursors.Cursor) -> None:
        r = self.rng
        customer = self._pick(cur, "shop.customers", self._ids.customers)
        if customer is None:
            return
        cur.execute(
            "UPDATE shop.customers SET balance = balance + %s, updated_at = %s, "
            "profile = JSON_SET(COALESCE(profile, '{}'), '$.score', %s) WHERE id = %s",
            (r.randrange(-10_000, 10_000) / 100, self._now(), r.randrange(1000), customer),
        )
        self._count("updates", cur.rowcount)

    def _new_customer(self, cur: pymysql.cursors.Cursor) -> None:
        r = self.rng
        cur.execute(
            "INSERT INTO shop.customers (email, full_name, country, balance, profile, created_at) "
            "VALUES (CONCAT('w', UUID_SHORT(), '@example.net'), %s, %s, 0.00, %s, %s)",
            (
                f"{r.choice(WORDS)} {r.choice(CJK)} {r.choice(EMOJI)}",
                r.choice(COUNTRIES),
                json.dumps({"source": "writer", "n": r.randrange(1000)}),
                self._now(),
            ),
        )
        self._ids.customers = max(self._ids.customers, int(cur.lastrowid))
        self._count("inserts", 1)

    def _price_change(self, cur: pymysql.cursors.Cursor) -> None:
        product = self._pick(cur, "shop.products", self._ids.products)
        if product is None:
            return
        cur.execute(
            "UPDATE shop.products SET price = GREATEST(0.99, price * %s) WHERE id = %s",
            (self.rng.choice((0.9, 0.95, 1.05, 1.1)), product),
        )
        self._count("updates", cur.rowcount)

    def _new_event(self, cur: pymysql.cursors.Cursor) -> None:
        r = self.rng
        kind = r.choice(EVENT_KINDS)
        cur.execute(
            "INSERT INTO metrics.events (occurred_at, source, kind, value, amount, payload, raw) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                self._now(),
                r.choice(EVENT_SOURCES),
                kind,
                round(r.expovariate(0.01), 6),
                r.randrange(10**8) / 10**6 if kind == "purchase" else None,
                json.dumps({"writer": True, "seq": self.stats.transactions}),
                r.randbytes(16) if r.random() < 0.2 else None,
            ),
        )
        self._ids.events = max(self._ids.events, int(cur.lastrowid))
        self._count("inserts", 1)

    def _new_contact_note(self, cur: pymysql.cursors.Cursor) -> None:
        r = self.rng
        cur.execute(
            "INSERT INTO crm.contacts (first_name, last_name, email, tags, created_at) VALUES (%s, %s, NULL, %s, %s)",
            (r.choice(("Zoë", "伟", "Ana", "민준")), r.choice(("Müller", "李", "O'Brien")), '["writer"]', self._now()),
        )
        contact = int(cur.lastrowid)
        self._ids.contacts = max(self._ids.contacts, contact)
        cur.execute(
            "INSERT INTO crm.notes (contact_id, body, created_at) VALUES (%s, %s, %s)",
            (contact, self._text(8), self._now()),
        )
        self._ids.notes = max(self._ids.notes, int(cur.lastrowid))
        self._count("inserts", 2)

    def _note_edit(self, cur: pymysql.cursors.Cursor) -> None:
        note = self._pick(cur, "crm.notes", self._ids.notes)
        if note is None:
            return
        cur.execute("UPDATE crm.notes SET body = CONCAT(body, %s) WHERE id = %s", (" ✏️ " + self._text(2), note))
        self._count("updates", cur.rowcount)

    def _delete_order(self, cur: pymysql.cursors.Cursor) -> None:
        order = self._pick(cur, "shop.orders", self._ids.orders)
        if order is None:
            return
        cur.execute("DELETE FROM shop.order_items WHERE order_id = %s", (order,))
        items = cur.rowcount
        cur.execute("DELETE FROM shop.orders WHERE id = %s", (order,))
        self._count("deletes", items + cur.rowcount)

    def _delete_note(self, cur: pymysql.cursors.Cursor) -> None:
        note = self._pick(cur, "crm.notes", self._ids.notes)
        if note is None:
            return
        cur.execute("DELETE FROM crm.notes WHERE id = %s", (note,))
        self._count("deletes", cur.rowcount)

    def _delete_events(self, cur: pymysql.cursors.Cursor) -> None:
        event = self._pick(cur, "metrics.events", self._ids.events)
        if event is None:
            return
        cur.execute("DELETE FROM metrics.events WHERE id BETWEEN %s AND %s", (event, event + 2))
        self._count("deletes", cur.rowcount)

    def _delete_customer(self, cur: pymysql.cursors.Cursor) -> None:
        customer = self._pick(
            cur,
            "shop.customers",
            self._ids.customers,
            "AND NOT EXISTS (SELECT 1 FROM shop.orders o WHERE o.customer_id = shop.customers.id)",
        )
        if customer is None:
            return
        cur.execute("DELETE FROM shop.customers WHERE id = %s", (customer,))
        self._count("deletes", cur.rowcount)
