"""Keys, options and config checks of the Tryton connector (no server needed)."""

from __future__ import annotations

import pytest

from app.config import parse_config
from connectors.tryton import records as rec
from connectors.tryton.options import TrytonOptions
from tests.tryton.conftest import address, make_order

pytestmark = pytest.mark.tryton


def options(**values: object) -> TrytonOptions:
    return TrytonOptions.parse("erp", {"database": "db", **values})


def test_sale_references_read_back_as_order_keys() -> None:
    plain = options()
    order = make_order("1001")
    assert rec.sale_reference(plain, order) == "shop-1001"
    assert rec.order_key_of(plain, "shop-1001") == "shop:order:1001"
    assert rec.order_key_of(plain, "typed by hand") is None
    assert rec.order_key_of(plain, None) is None

    dashed = options(reference_prefix="WEB-", order_sources=["shop-eu", "shop"])
    assert rec.order_key_of(dashed, "WEB-shop-eu-1001") == "shop-eu:order:1001"
    assert rec.order_key_of(dashed, "WEB-shop-1-2") == "shop:order:1-2"
    assert rec.order_key_of(dashed, "WEB-other-1") is None
    assert rec.order_key_of(dashed, "shop-eu-1001") is None  # not our prefix


def test_party_codes_name_the_customer_and_hide_a_guests_email() -> None:
    opts = options(party_code_prefix="GW-")
    assert rec.party_code(opts, "shop", "77") == "GW-shop-77"
    guest = rec.guest_party_code(opts, "shop", " Ada@Example.com ")
    assert guest == rec.guest_party_code(opts, "shop", "ada@example.com")
    assert guest.startswith("GW-shop-guest-") and "example" not in guest


def test_addresses_match_whatever_the_case_accents_and_spacing() -> None:
    one = rec.address_values(address(city="Zürich"), 1, None)
    two = rec.address_values(address(city=" zurich ", line1="12  St James's square"), 1, None)
    assert rec.address_key(one) == rec.address_key(two)
    assert rec.address_key(one) != rec.address_key(rec.address_values(address(), 2, None))


def test_names_split_on_the_last_word() -> None:
    assert rec.split_name("Ada King Lovelace") == ("Ada King", "Lovelace")
    assert rec.split_name("Cher") == (None, "Cher")
    assert rec.split_name("") == (None, None)


def test_unknown_or_bad_options_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match=r"options\.warehose"):
        options(warehose="WH")
    with pytest.raises(ValueError, match="unknown time zone"):
        options(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"options\.database"):
        TrytonOptions.parse("erp", {})
    with pytest.raises(ValueError, match="sale_state"):
        options(sale_state="shipped")


def test_the_config_file_accepts_a_tryton_connection_and_checks_it() -> None:
    yaml = """
connections:
  - id: erp
    type: tryton
    base_url: http://tryton:8000
    credentials: {username: gateway, password: secret}
    options: {database: prod}
    poll: {streams: [inventory, shipments, credit_notes, customers]}
"""
    config = parse_config(yaml, "tryton")
    assert config.connections[0].type == "tryton"
    with pytest.raises(Exception, match="password"):
        parse_config(yaml.replace(", password: secret", ""), "tryton")
    with pytest.raises(Exception, match="cannot poll 'prices'"):
        parse_config(yaml.replace("customers]", "prices]"), "tryton")
