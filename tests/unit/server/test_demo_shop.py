"""The demo order API's data, where the demo flow's shop_api points, and the demo secret default."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.secrets import secret_lookup
from engine.server.demo_shop import demo_values, sample_order
from engine.settings import Settings

NODE = "http://127.0.0.1:8000"


def test_a_sample_order_is_plausible_and_the_same_every_time() -> None:
    today = datetime(2026, 1, 5, tzinfo=UTC)
    orders = [sample_order(str(n), today=today) for n in range(100000, 100060)]
    assert orders == [sample_order(str(n), today=today) for n in range(100000, 100060)]
    assert {o["status"] for o in orders} == {"shipped", "delivered", "processing"}
    for order in orders:
        assert order["items"] and all(item["quantity"] >= 1 for item in order["items"])
        assert ("eta" in order) == (order["status"] == "shipped")
        if "eta" in order:
            assert "2026-01-06" <= order["eta"] <= "2026-01-09"


def test_the_demo_api_fills_shop_api_only_when_on_and_unset() -> None:
    on = Settings.from_mapping({"demo": {"order_api": True}}, environ={})
    assert demo_values(on, NODE).flow_settings().values == {"shop_api": f"{NODE}/demo/api"}
    real = Settings.from_mapping({"demo": {"order_api": True}, "values": {"shop_api": "https://shop"}}, environ={})
    assert demo_values(real, NODE).flow_settings().values == {"shop_api": "https://shop"}
    off = Settings.from_mapping({}, environ={})
    assert demo_values(off, NODE).flow_settings().values == {}


def test_a_secret_comes_from_the_environment_before_its_demo_default() -> None:
    settings = Settings.from_mapping({"secrets": {"SHOP_TOKEN": {"default": "demo-token"}}}, environ={})
    assert secret_lookup(settings, {})("SHOP_TOKEN") == "demo-token"
    assert secret_lookup(settings, {"SHOP_TOKEN": "real"})("SHOP_TOKEN") == "real"
    assert secret_lookup(settings, {})("OTHER") is None
