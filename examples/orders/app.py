"""An order service: score an order's fraud risk, render its invoice, look an order up.

The kind of FastAPI service ``ftscale app`` is meant for (``README.md`` beside this file):

- ``POST /score`` (a ``def`` endpoint, so FastAPI runs it in Starlette's thread pool): an order
  in, validated by pydantic, and its fraud risk out, computed by a gradient-boosted tree
  ensemble evaluated in pure Python: 300 trees over the order's features, 40 more per line item.
- ``POST /invoice`` (``def``): the order as an HTML invoice, every field escaped by markupsafe,
  money in ``Decimal``: templating without a template engine.
- ``GET /orders/{order_id}`` (``async def``): awaits a simulated database call (5 ms), then
  answers the order's status: I/O that leaves the event loop free.

Every route needs an API key header (a FastAPI dependency); the scoring model is another.
The model's trees are drawn from a fixed seed at import, so every process scores alike.
"""

from __future__ import annotations

import asyncio
import math
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, HTTPException
from markupsafe import Markup, escape
from pydantic import BaseModel, Field

API_KEY = "example-key"
MODEL_VERSION = "gbt-2026.11"
Category = Literal["books", "electronics", "grocery", "toys", "clothing"]
CATEGORIES: tuple[str, ...] = ("books", "electronics", "grocery", "toys", "clothing")
TAX_RATE = Decimal("0.19")
CENT = Decimal("0.01")


class LineItem(BaseModel):
    sku: str = Field(min_length=1, max_length=32)
    description: str = Field(max_length=200)
    quantity: int = Field(ge=1, le=1000)
    unit_price: Decimal = Field(gt=0, max_digits=10, decimal_places=2)
    category: Category


class Customer(BaseModel):
    id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    account_age_days: int = Field(ge=0)
    previous_orders: int = Field(ge=0)
    chargebacks: int = Field(ge=0)


class Order(BaseModel):
    order_id: int = Field(ge=1)
    customer: Customer
    items: list[LineItem] = Field(min_length=1, max_length=100)
    shipping_country: str = Field(pattern=r"^[A-Z]{2}$")
    coupon: str | None = Field(default=None, max_length=20)


class ItemRisk(BaseModel):
    sku: str
    risk: float


class Score(BaseModel):
    order_id: int
    risk: float
    decision: Literal["approve", "review", "reject"]
    riskiest_items: list[ItemRisk]
    model_version: str


class OrderStatus(BaseModel):
    order_id: int
    status: Literal["received", "packed", "shipped", "delivered"]
    carrier: str | None


# --- the model ------------------------------------------------------------------------------------

Tree = tuple[list[int], list[float], list[float]]  # split features, thresholds, leaf values


def _tree(rng: random.Random, features: int, depth: int) -> Tree:
    """One complete tree: node i splits on feature[i] at threshold[i]; 2**depth leaves."""
    inner = 2**depth - 1
    return (
        [rng.randrange(features) for _ in range(inner)],
        [rng.uniform(-1.0, 1.0) for _ in range(inner)],
        [rng.gauss(0.0, 0.05) for _ in range(2**depth)],
    )


def _predict(trees: list[Tree], x: list[float], depth: int) -> float:
    total = 0.0
    for split, threshold, leaves in trees:
        node = 0
        for _ in range(depth):
            node = 2 * node + (2 if x[split[node]] > threshold[node] else 1)
        total += leaves[node - len(split)]
    return total


class RiskModel:
    """A gradient-boosted tree ensemble: one for the order, a smaller one per line item."""

    ORDER_FEATURES, ITEM_FEATURES, DEPTH = 12, 8, 6

    def __init__(self, seed: int = 2026) -> None:
        rng = random.Random(seed)
        self.order_trees = [_tree(rng, self.ORDER_FEATURES, self.DEPTH) for _ in range(300)]
        self.item_trees = [_tree(rng, self.ITEM_FEATURES, self.DEPTH) for _ in range(40)]

    @staticmethod
    def _squash(value: float) -> float:
        return 1.0 / (1.0 + math.exp(-value))

    def item_features(self, item: LineItem, order: Order) -> list[float]:
        price = float(item.unit_price)
        category = CATEGORIES.index(item.category)
        return [
            math.tanh(math.log1p(price) / 6 - 0.5),
            math.tanh(math.log1p(item.quantity) / 3 - 0.5),
            category / 2 - 1.0,
            1.0 if item.category == "electronics" and item.quantity > 3 else -1.0,
            math.tanh(len(item.description) / 100 - 0.5),
            1.0 if order.shipping_country != order.customer.country else -1.0,
            math.tanh(order.customer.chargebacks - 0.5),
            sum(ord(c) for c in item.sku) % 200 / 100 - 1.0,
        ]

    def order_features(self, order: Order) -> list[float]:
        customer = order.customer
        totals = [float(i.unit_price) * i.quantity for i in order.items]
        amount = sum(totals)
        return [
            math.tanh(math.log1p(amount) / 8 - 0.5),
            math.tanh(len(order.items) / 20 - 0.5),
            math.tanh(max(totals) / (amount or 1.0) - 0.5),
            math.tanh(math.log1p(customer.account_age_days) / 6 - 0.5),
            math.tanh(customer.previous_orders / 10 - 0.5),
            math.tanh(customer.chargebacks - 0.5),
            1.0 if order.shipping_country != customer.country else -1.0,
            1.0 if order.coupon else -1.0,
            sum(1 for i in order.items if i.category == "electronics") / len(order.items) * 2 - 1,
            math.tanh(len(customer.email.split("@")[1]) / 10 - 1.0),
            (customer.id % 97) / 48.5 - 1.0,
            math.tanh(sum(i.quantity for i in order.items) / 50 - 0.5),
        ]

    def item_risk(self, item: LineItem, order: Order) -> float:
        return self._squash(_predict(self.item_trees, self.item_features(item, order), self.DEPTH))

    def score(self, order: Order) -> Score:
        items = [ItemRisk(sku=item.sku, risk=round(self.item_risk(item, order), 4)) for item in order.items]
        base = _predict(self.order_trees, self.order_features(order), self.DEPTH)
        risk = self._squash(base + 2.0 * max(i.risk for i in items) - 1.0)
        decision: Literal["approve", "review", "reject"] = (
            "reject" if risk > 0.9 else "review" if risk > 0.6 else "approve"
        )
        riskiest = sorted(items, key=lambda i: i.risk, reverse=True)[:3]
        return Score(
            order_id=order.order_id,
            risk=round(risk, 4),
            decision=decision,
            riskiest_items=riskiest,
            model_version=MODEL_VERSION,
        )


_MODEL = RiskModel()


def get_model() -> RiskModel:
    return _MODEL


def require_api_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
    if x_api_key != API_KEY:
        raise HTTPException(status_code=401, detail="a valid X-API-Key header is required")


# --- the invoice ----------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def render_invoice(order: Order) -> str:
    rows = []
    subtotal = Decimal(0)
    for n, item in enumerate(order.items, 1):
        line = item.unit_price * item.quantity
        subtotal += line
        rows.append(
            Markup(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=num>{}</td>"
                "<td class=num>{}</td></tr>"
            ).format(n, item.sku, item.description, item.category, item.quantity, money(line))
        )
    tax = (subtotal * TAX_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
    customer = order.customer
    head = Markup("<h1>Invoice {}</h1><p>{} &lt;{}&gt;, ships to {}</p>").format(
        order.order_id, customer.name, customer.email, order.shipping_country
    )
    coupon = Markup("<p>Coupon: {}</p>").format(order.coupon) if order.coupon else Markup("")
    totals = Markup(
        "<tr><th colspan=5>Subtotal</th><td class=num>{}</td></tr>"
        "<tr><th colspan=5>Tax {}%</th><td class=num>{}</td></tr>"
        "<tr><th colspan=5>Total</th><td class=num>{}</td></tr>"
    ).format(money(subtotal), escape(str(TAX_RATE * 100)), money(tax), money(subtotal + tax))
    body = Markup("").join(rows)
    return str(
        Markup("<!doctype html><html><body>{}{}<table>{}{}</table></body></html>").format(
            head, coupon, body, totals
        )
    )


# --- the app --------------------------------------------------------------------------------------

app = FastAPI(title="orders", dependencies=[Depends(require_api_key)])


@app.post("/score")
def score(order: Order, model: Annotated[RiskModel, Depends(get_model)]) -> Score:
    """The order's fraud risk and what to do with it (CPU work: runs in the thread pool)."""
    return model.score(order)


@app.post("/invoice")
def invoice(order: Order) -> dict[str, str | int]:
    """The order's HTML invoice (CPU work: runs in the thread pool)."""
    return {"order_id": order.order_id, "html": render_invoice(order)}


class Database:
    """Stands in for a database client: every query waits 5 ms, as a round trip would."""

    LATENCY_S = 0.005
    STATUSES = ("received", "packed", "shipped", "delivered")

    async def order_status(self, order_id: int) -> OrderStatus:
        await asyncio.sleep(self.LATENCY_S)
        status = self.STATUSES[order_id % len(self.STATUSES)]
        return OrderStatus(
            order_id=order_id, status=status, carrier=None if status in ("received", "packed") else "DHL"
        )


_DB = Database()


def get_db() -> Database:
    return _DB


@app.get("/orders/{order_id}")
async def order_status(order_id: int, db: Annotated[Database, Depends(get_db)]) -> OrderStatus:
    """Where the order is (I/O: awaited on the event loop)."""
    return await db.order_status(order_id)
