"""pydantic v2 validation of a nested payload: Rust code (pydantic-core) that holds the GIL."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ftscale.vocab import WorkloadClass
from ftscale.workloads.registry import register


class _Address(BaseModel):
    street: str
    city: str
    postcode: str = Field(pattern=r"^\d{5}$")


class _Customer(BaseModel):
    id: int = Field(ge=0)
    email: str
    address: _Address


class _Line(BaseModel):
    sku: str
    quantity: int = Field(gt=0)
    unit_cents: int = Field(ge=0)
    tags: list[str] = []


class _Order(BaseModel):
    order_id: int
    customer: _Customer
    lines: list[_Line]


def _payload(n: int) -> dict[str, object]:
    return {
        "order_id": n,
        "customer": {
            "id": 42,
            "email": "buyer@example.com",
            "address": {"street": "1 High St", "city": "Springfield", "postcode": "12345"},
        },
        "lines": [
            {
                "sku": f"SKU-{i:05d}",
                "quantity": 1 + i % 9,
                "unit_cents": 100 + (i * 37) % 5000,
                "tags": ["a", "b"],
            }
            for i in range(n)
        ],
    }


@register(
    workload_class=WorkloadClass.C_HOLDS_GIL,
    size_meaning="order lines in the validated payload",
    default_size=6_000,
    max_size=160_000,
    large_max_size=1_000_000,
    smoke_size=3,
)
def pydantic_validate(lines: int) -> int:
    """Validate a nested order with pydantic models, then dump it back."""
    order = _Order.model_validate(_payload(lines))
    dumped = order.model_dump()
    total: int = sum(line["quantity"] * line["unit_cents"] for line in dumped["lines"])
    return total + len(dumped["lines"])
