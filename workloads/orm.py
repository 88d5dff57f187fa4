"""A synchronous data layer, as FastAPI services keep it behind the thread pool: sqlite3 and an ORM.

Teams that move to FastAPI keep their synchronous database driver and ORM and call them from
``def`` endpoints, which Starlette runs in its thread pool. This workload is that request: one
page of order lines (keyset pagination: the ``size`` lines from an id on) read from a real
database engine with a four-table join, each row mapped to entity objects through an identity
map (one object per customer, product and order, as an ORM's session keeps them), and the
orders validated into pydantic response models from those objects (``from_attributes``, what
FastAPI's ``response_model`` does with ORM objects).

Where the time goes: ``sqlite3`` steps the query and reads pages with the GIL released (the
database file is in the OS page cache after the first reads, so the "I/O" is ``pread`` system
calls and sqlite's own B-tree walk); building row tuples, mapping and validation hold it. On a
GIL build those parts are serialised; on a free-threaded build they are not.

The database (:func:`database`): about 340,000 rows in four tables with their indexes, from a
seeded generator, so its contents and every checksum are the same on every machine. It is built
once per machine and user into the temporary directory (a minute's CPU would otherwise be spent
by every worker process and pool child of every server the bench starts), under a file lock,
written to a temporary name and renamed into place; every process checks its ``contents`` row
before use and rebuilds a file that does not match. Each thread opens its own read-only
connection (sqlite3 connections are not shared between threads), kept for the thread's life.
What it is not: a write workload (no transactions contend), or a network database (no server
round trip; the wait of a remote database is the ``rag_gateway`` shape).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import sqlite3
import tempfile
import threading
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ftscale.vocab import WorkloadClass
from ftscale.workloads.registry import register

# The database's contents: change any of these and every machine rebuilds its file (the file's
# ``contents`` row says which contents it holds).
SEED = 20261126
CUSTOMERS = 20_000
PRODUCTS = 2_000
ORDERS = 80_000
LINES = 240_208  # order lines the seeded generator draws (1 to 5 per order)
DIGEST = 4_170_201_383  # of every row drawn (rows_digest): checked when the file is built
CONTENTS = f"seed={SEED} customers={CUSTOMERS} products={PRODUCTS} orders={ORDERS} digest={DIGEST}"

_SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL,
    tier TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    status TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    unit_cents INTEGER NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE INDEX orders_by_time ON orders (placed_at);
CREATE INDEX lines_by_order ON order_lines (order_id);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# One page of order lines with their order, customer and product: keyset pagination on the
# lines' primary key, each join by primary key.
PAGE_QUERY = """
SELECT l.id, l.quantity, l.unit_cents,
       p.id, p.sku, p.title,
       o.id, o.status, o.placed_at, o.currency,
       c.id, c.name, c.email, c.country, c.tier
FROM order_lines AS l
JOIN orders AS o ON o.id = l.order_id
JOIN customers AS c ON c.id = o.customer_id
JOIN products AS p ON p.id = l.product_id
WHERE l.id >= ?
ORDER BY l.id
LIMIT ?
"""

_SYLLABLES = "ka lo mi ra ne to su vi da re an el or is un ba ce fi go hu".split()
_COUNTRIES = ("DE", "FR", "GB", "US", "NL", "SE", "ES", "IT", "PL", "JP")
_TIERS = ("free", "pro", "enterprise")
_STATUSES = ("placed", "paid", "shipped", "delivered", "refunded")
_CURRENCIES = ("EUR", "USD", "GBP")
_WORDS = "steel oak linen cotton glass copper wool paper stone brass".split()
_NOUNS = "lamp chair kettle scarf bowl shelf clock vase towel basket".split()
_EPOCH = datetime(2024, 1, 1)


Row = tuple[int | str, ...]


def _rows(rng: random.Random) -> Iterator[tuple[str, list[Row]]]:
    """(table, rows) in insertion order, every value drawn from ``rng``."""
    customers: list[Row] = []
    for cid in range(1, CUSTOMERS + 1):
        name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()
        created = _EPOCH + timedelta(seconds=rng.randrange(365 * 86_400))
        customers.append(
            (
                cid,
                name,
                f"{name.lower()}.{cid}@example.com",
                rng.choice(_COUNTRIES),
                rng.choice(_TIERS),
                created.isoformat(),
            )
        )
    yield "customers", customers
    prices = [rng.randint(99, 49_999) for _ in range(PRODUCTS)]
    yield (
        "products",
        [
            (pid, f"SKU-{pid:05d}", f"{rng.choice(_WORDS)} {rng.choice(_NOUNS)}", prices[pid - 1])
            for pid in range(1, PRODUCTS + 1)
        ],
    )
    orders: list[Row] = []
    lines: list[Row] = []
    for oid in range(1, ORDERS + 1):
        placed = _EPOCH + timedelta(seconds=rng.randrange(2 * 365 * 86_400))
        customer, status = rng.randint(1, CUSTOMERS), rng.choice(_STATUSES)
        orders.append((oid, customer, status, placed.isoformat(), rng.choice(_CURRENCIES)))
        for _ in range(rng.randint(1, 5)):
            pid = rng.randint(1, PRODUCTS)
            lines.append((len(lines) + 1, oid, pid, rng.randint(1, 9), prices[pid - 1]))
    yield "orders", orders
    yield "order_lines", lines


def rows_digest(tables: Iterator[tuple[str, list[Row]]]) -> int:
    """A CRC-32 of every table's rows, to check the generator still draws what it did."""
    digest = 0
    for table, rows in tables:
        digest = zlib.crc32(repr((table, rows)).encode(), digest)
    return digest


def _build(path: Path) -> None:
    """Write the database to ``path`` (a fresh file)."""
    tables = list(_rows(random.Random(SEED)))
    drawn = rows_digest(iter(tables))
    if drawn != DIGEST:
        raise RuntimeError(
            f"the seeded generator drew other rows (digest {drawn}, not {DIGEST}): a change to it must "
            "update DIGEST (and with it CONTENTS, so that every machine rebuilds its file)"
        )
    conn = sqlite3.connect(path)
    try:
        conn.executescript(_SCHEMA)
        with conn:  # one transaction
            for table, rows in tables:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            conn.execute("INSERT INTO meta VALUES ('contents', ?)", (CONTENTS,))
        conn.execute("ANALYZE")
    finally:
        conn.close()


def _holds_contents(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'contents'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None and row[0] == CONTENTS


def default_path() -> Path:
    """Where this user's copy of the database lives (``$FTSCALE_ORM_DB`` overrides it)."""
    override = os.environ.get("FTSCALE_ORM_DB")
    if override:
        return Path(override)
    return Path(tempfile.gettempdir()) / f"ftscale-orm-{os.getuid()}.sqlite3"


_process_lock = threading.Lock()
_ready: dict[int, Path] = {}  # pid -> the checked database (a forked child checks again)


def database(path: Path | None = None) -> Path:
    """The database file, built first if it is missing or holds other contents.

    Safe to call from any thread and process at once: threads of one process wait on a lock,
    processes on a file lock, and the file appears complete or not at all (renamed into place).
    """
    pid = os.getpid()
    with _process_lock:
        if path is None and pid in _ready:
            return _ready[pid]
        target = path or default_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_name(target.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _holds_contents(target):
                fd, scratch = tempfile.mkstemp(prefix=target.name, suffix=".building", dir=target.parent)
                os.close(fd)
                try:
                    os.unlink(scratch)
                    _build(Path(scratch))
                    os.replace(scratch, target)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(scratch)
        if path is None:
            _ready[pid] = target
        return target


class _Owned:
    """One thread's connection, closed when the thread's locals are cleared (when it ends).

    Only its thread uses it; ``check_same_thread`` is off so that it can be closed wherever the
    locals are cleared (sqlite is built serialised: that is safe).
    """

    __slots__ = ("conn", "pid")

    def __init__(self) -> None:
        uri = f"file:{database()}?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.pid = os.getpid()

    def __del__(self) -> None:
        self.conn.close()


class _Connections(threading.local):
    """Each thread's own read-only connection, opened on its first query."""

    owned: _Owned | None = None


_local = _Connections()


def connection() -> sqlite3.Connection:
    """This thread's connection (opened once per thread; again in a forked child)."""
    owned = _local.owned
    if owned is None or owned.pid != os.getpid():
        owned = _local.owned = _Owned()
    return owned.conn


# -- the ORM side: entities with an identity map, then response models ---------------------------


class Customer:
    __slots__ = ("country", "email", "id", "name", "tier")

    def __init__(self, id: int, name: str, email: str, country: str, tier: str) -> None:
        self.id, self.name, self.email, self.country, self.tier = id, name, email, country, tier


class Product:
    __slots__ = ("id", "sku", "title")

    def __init__(self, id: int, sku: str, title: str) -> None:
        self.id, self.sku, self.title = id, sku, title


class Order:
    __slots__ = ("currency", "customer", "id", "lines", "placed_at", "status")

    def __init__(self, id: int, status: str, placed_at: str, currency: str, customer: Customer) -> None:
        self.id, self.status, self.placed_at, self.currency = id, status, placed_at, currency
        self.customer = customer
        self.lines: list[OrderLine] = []


class OrderLine:
    __slots__ = ("id", "product", "quantity", "unit_cents")

    def __init__(self, id: int, quantity: int, unit_cents: int, product: Product) -> None:
        self.id, self.quantity, self.unit_cents, self.product = id, quantity, unit_cents, product


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class CustomerOut(_Out):
    id: int = Field(gt=0)
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[a-z]+\.\d+@example\.com$")
    country: str = Field(min_length=2, max_length=2)
    tier: Literal["free", "pro", "enterprise"]


class ProductOut(_Out):
    id: int = Field(gt=0)
    sku: str = Field(pattern=r"^SKU-\d{5}$")
    title: str


class OrderLineOut(_Out):
    id: int = Field(gt=0)
    quantity: int = Field(gt=0)
    unit_cents: int = Field(ge=0)
    product: ProductOut


class OrderOut(_Out):
    id: int = Field(gt=0)
    status: Literal["placed", "paid", "shipped", "delivered", "refunded"]
    placed_at: datetime
    currency: Literal["EUR", "USD", "GBP"]
    customer: CustomerOut
    lines: list[OrderLineOut]


def first_line(lines: int) -> int:
    """Where a page of ``lines`` starts: spread over the table, the same for the same size."""
    return 1 + (lines * 7919) % (LINES - lines + 1)


def page(lines: int) -> list[OrderOut]:
    """One page of ``lines`` order lines, mapped to entities and validated as response models."""
    rows = connection().execute(PAGE_QUERY, (first_line(lines), lines)).fetchall()
    customers: dict[int, Customer] = {}
    products: dict[int, Product] = {}
    orders: dict[int, Order] = {}
    for lid, quantity, unit_cents, pid, sku, title, oid, status, placed, currency, cid, *who in rows:
        order = orders.get(oid)
        if order is None:
            customer = customers.get(cid)
            if customer is None:
                customer = customers[cid] = Customer(cid, *who)
            order = orders[oid] = Order(oid, status, placed, currency, customer)
        product = products.get(pid)
        if product is None:
            product = products[pid] = Product(pid, sku, title)
        order.lines.append(OrderLine(lid, quantity, unit_cents, product))
    return [OrderOut.model_validate(order) for order in orders.values()]


@register(
    workload_class=WorkloadClass.BLOCKING_IO,
    size_meaning="order lines read, mapped and validated (rows per request)",
    default_size=100,
    max_size=50_000,
    large_max_size=LINES,
    smoke_size=3,
    prepare=database,
)
def orm_orders(lines: int) -> int:
    """A page of order lines from sqlite3 (four-table join), mapped to ORM entities, validated by pydantic."""
    total = 0
    for order in page(lines):
        total += order.id * 1_000_003 + int((order.placed_at - _EPOCH).total_seconds())
        total += zlib.crc32(order.customer.email.encode()) + len(order.lines)
        for line in order.lines:
            total += line.id + line.quantity * line.unit_cents + line.product.id
    return total
