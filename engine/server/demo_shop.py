"""A demo-only order API, so the demo flow's order lookup works with no shop behind it.

Off unless ``demo.order_api`` is true in the settings (the shipped ``flowdesk.yaml``
turns it on). Any well-formed order number (6-12 digits) gets a plausible sample
order derived from the number, the same every time; anything else is a 404. It
holds no data and checks no token: it accepts any ``Authorization`` header, so
the demo needs no ``SHOP_TOKEN``. A real shop is configured with
``values.shop_api`` (and the worker's ``SHOP_TOKEN``), which this never overrides.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import get
from litestar.params import Parameter

from engine.server.problems import Problem
from engine.settings import Settings

#: Where the demo API is mounted; ``values.shop_api`` points here when it is on.
PREFIX = "/demo/api"
_ORDER_NUMBER = re.compile(r"^[0-9]{6,12}$")
_STATUSES = ("shipped", "delivered", "processing")
_PRODUCTS = ("Canvas tote bag", "Espresso cups (set of 2)", "Wool socks", "Desk lamp", "Notebook A5", "Tea sampler")


def order_api_enabled(settings: Settings) -> bool:
    """Whether the settings turn the demo order API on (``demo.order_api: true``)."""
    return bool(settings.get("demo", "order_api", default=False))


def demo_values(settings: Settings, base_url: str) -> Settings:
    """``settings`` with ``values.shop_api`` pointing at this node's demo API, when it is on and unset."""
    if not order_api_enabled(settings) or settings.get("values", "shop_api"):
        return settings
    data = dict(settings.data)
    data["values"] = {**(settings.get("values", default={}) or {}), "shop_api": base_url.rstrip("/") + PREFIX}
    return Settings(data, settings.file, settings.overrides)


def sample_order(number: str, *, today: datetime | None = None) -> dict[str, Any]:
    """A plausible order for ``number``: its status, items and (when shipped) eta follow from the number."""
    seed = hashlib.sha256(number.encode()).digest()
    status = _STATUSES[seed[0] % len(_STATUSES)]
    items = [
        {"name": _PRODUCTS[(seed[1] + i) % len(_PRODUCTS)], "quantity": 1 + seed[2 + i] % 3}
        for i in range(1 + seed[5] % 3)
    ]
    order: dict[str, Any] = {"id": number, "status": status, "items": items}
    if status == "shipped":
        day = (today or datetime.now(UTC)).date() + timedelta(days=1 + seed[6] % 4)
        order["eta"] = day.isoformat()
    return order


@get(f"{PREFIX}/orders/{{number:str}}", opt={"public": True}, summary="Demo only: a sample order for any number")
async def demo_order(
    number: Annotated[str, Parameter(description="the order number, 6 to 12 digits")],
) -> dict[str, Any]:
    """A sample order (demo data, no token needed); 404 for a number that is not 6-12 digits."""
    if not _ORDER_NUMBER.match(number):
        raise Problem(404, "there is no such order: demo order numbers have 6 to 12 digits")
    return sample_order(number)
