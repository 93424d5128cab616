"""Customers flow rules: normalization, duplicate matching, field ownership, erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.flows.customers.rules import (
    CustomerRules,
    erasure_phones,
    erasure_request_phones,
    find_duplicate,
    match_keys,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    owned_view,
    writable_fields,
)
from kernel.canonical.customer import Customer, ErasureRequest

NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def make_customer(**overrides: Any) -> Customer:
    data: dict[str, Any] = {
        "source": "shop-eu",
        "external_id": "c-7",
        "email": "jane@example.com",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": None,
        "addresses": [],
        "updated_at": NOW,
    }
    data.update(overrides)
    return Customer.model_validate(data)


# --- config -------------------------------------------------------------------------------


def test_default_ownership_is_b2c() -> None:
    rules = CustomerRules()
    assert rules.field_owner["email"] == "store"
    assert rules.field_owner["addresses"] == "store"
    assert rules.field_owner["credit_limit"] == "erp"
    assert rules.field_owner["tax_exempt"] == "erp"
    assert rules.match_on == ["email", "phone", "name_postcode"]
    for name, field in CustomerRules.model_fields.items():
        assert field.description, name


def test_unknown_field_in_ownership_is_rejected() -> None:
    with pytest.raises(ValidationError, match="emial"):
        CustomerRules(field_owner={"emial": "store"})
    with pytest.raises(ValidationError):
        CustomerRules(field_owner={"external_id": "erp"})  # identity is nobody's


def test_default_country_code_is_checked_and_upper_cased() -> None:
    assert CustomerRules(default_country_code="de").default_country_code == "DE"
    with pytest.raises(ValidationError, match="XX"):
        CustomerRules(default_country_code="XX")


# --- normalization ------------------------------------------------------------------------


def test_normalize_email() -> None:
    assert normalize_email("  Jane@Example.COM ") == "jane@example.com"
    assert normalize_email("   ") is None
    assert normalize_email(None) is None


@given(st.text())
def test_normalize_email_is_idempotent(value: str) -> None:
    once = normalize_email(value)
    assert normalize_email(once) == once


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+49 30 123456", None, "+4930123456"),
        ("0049 30 123456", None, "+4930123456"),
        ("030 123456", "DE", "+4930123456"),
        ("+49 (0)30 123456", None, "+4930123456"),
        ("030/123-456", "DE", "+4930123456"),
        ("(415) 555-0132", "US", "+14155550132"),
        ("1 415 555 0132", "US", "+14155550132"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06 12345678", "it", "+390612345678"),  # Italy keeps its leading 0
        ("+1 415 555 0132 ext. 12", None, "+14155550132"),
        ("030 123456", None, None),  # national without a country: no guess
        ("030 123456", "ZZ", None),
        ("+49 12", None, None),  # too short
        ("", "DE", None),
        ("n/a", "DE", None),
    ],
)
def test_normalize_phone(raw: str, country: str | None, expected: str | None) -> None:
    assert normalize_phone(raw, country) == expected


@given(st.text(alphabet="0123456789 +-()/", max_size=25), st.sampled_from([None, "DE", "US"]))
def test_normalize_phone_is_e164_shaped_and_stable(raw: str, country: str | None) -> None:
    phone = normalize_phone(raw, country)
    if phone is not None:
        assert phone.startswith("+")
        assert phone[1:].isdigit()
        assert 7 <= len(phone) - 1 <= 15
        # an international number normalizes to itself
        assert normalize_phone(phone, country) == phone


def test_normalize_name_and_postcode() -> None:
    assert normalize_name("  José   MÜLLER ") == "jose muller"
    assert normalize_name("Straße") == "strasse"
    assert normalize_name(None) == ""
    assert normalize_postcode(" sw1a 1aa ") == "SW1A1AA"
    assert normalize_postcode(None) == ""


# --- matching -----------------------------------------------------------------------------


def test_match_keys_in_rule_order() -> None:
    customer = make_customer(
        email="  Jane@Example.COM ",
        phone="030 123456",
        first_name="Jäne",
        last_name="Doe",
        addresses=[
            {"postal_code": "10115", "country_code": "DE"},
            {"postal_code": None, "country_code": "DE"},
        ],
    )
    assert match_keys(customer, CustomerRules()) == [
        "email:jane@example.com",
        "phone:+4930123456",
        "name_postcode:jane doe|10115",
    ]
    only_phone = CustomerRules(match_on=["phone"], default_country_code="DE")
    assert match_keys(customer, only_phone) == ["phone:+4930123456"]


def test_phone_without_country_anywhere_gives_no_key() -> None:
    customer = make_customer(phone="030 123456")
    assert not any(k.startswith("phone:") for k in match_keys(customer, CustomerRules()))
    with_default = CustomerRules(default_country_code="DE")
    assert "phone:+4930123456" in match_keys(customer, with_default)


def _index(customer: Customer, rules: CustomerRules) -> dict[str, str]:
    return {key: customer.entity_key for key in match_keys(customer, rules)}


def test_duplicate_found_by_normalized_email() -> None:
    rules = CustomerRules()
    existing = make_customer(source="erp", external_id="C-1", email="jane@example.com")
    incoming = make_customer(email="  Jane@Example.COM ")
    hit = find_duplicate(match_keys(incoming, rules), _index(existing, rules))
    assert hit == ("email:jane@example.com", "erp:customer:C-1")


def test_duplicate_found_by_phone_with_default_country() -> None:
    rules = CustomerRules(default_country_code="DE")
    existing = make_customer(
        source="erp", external_id="C-1", email="jane@work.example", phone="+49 30 123456"
    )
    incoming = make_customer(email="jane@home.example", phone="030 123456")
    hit = find_duplicate(match_keys(incoming, rules), _index(existing, rules))
    assert hit == ("phone:+4930123456", "erp:customer:C-1")


def test_duplicate_found_by_name_and_postcode_with_accents() -> None:
    rules = CustomerRules()
    existing = make_customer(
        source="erp",
        external_id="C-1",
        email=None,
        first_name="José",
        last_name="Müller",
        addresses=[{"postal_code": "10115"}],
    )
    incoming = make_customer(
        email="jm@example.com",
        first_name="jose",
        last_name="  MULLER ",
        addresses=[{"postal_code": " 101 15"}],
    )
    hit = find_duplicate(match_keys(incoming, rules), _index(existing, rules))
    assert hit == ("name_postcode:jose muller|10115", "erp:customer:C-1")


def test_email_match_wins_over_weaker_keys() -> None:
    index = {"phone:+4930123456": "erp:customer:C-2", "email:jane@example.com": "erp:customer:C-1"}
    keys = ["email:jane@example.com", "phone:+4930123456"]
    assert find_duplicate(keys, index) == ("email:jane@example.com", "erp:customer:C-1")


def test_no_duplicate_for_a_stranger_or_oneself() -> None:
    rules = CustomerRules()
    jane = make_customer()
    index = _index(jane, rules)
    stranger = make_customer(external_id="c-8", email="max@example.com", first_name="Max")
    assert find_duplicate(match_keys(stranger, rules), index) is None
    assert find_duplicate(match_keys(jane, rules), index, exclude=jane.entity_key) is None


def test_name_postcode_disabled_by_rules() -> None:
    rules = CustomerRules(match_on=["email"])
    customer = make_customer(email=None, addresses=[{"postal_code": "10115"}])
    assert match_keys(customer, rules) == []


# --- ownership ----------------------------------------------------------------------------


def test_writable_fields_follow_ownership() -> None:
    rules = CustomerRules()
    store = writable_fields("store", rules)
    erp = writable_fields("erp", rules)
    assert {"email", "phone", "addresses", "default_billing"} <= store
    assert "credit_limit" not in store
    assert {"group", "terms", "credit_limit", "tax_exempt"} <= erp
    assert "email" not in erp
    assert not store & erp


def test_owned_view_has_only_owned_fields_and_identity() -> None:
    customer = make_customer(
        group="wholesale",
        terms="Net 30",
        credit_limit={"amount": "5000.00", "currency": "EUR"},
        addresses=[{"city": "Berlin"}],
        default_billing=0,
    )
    from_store = owned_view(customer, "store", CustomerRules())
    assert from_store["email"] == "jane@example.com"
    assert from_store["addresses"][0]["city"] == "Berlin"
    assert from_store["default_billing"] == 0
    assert from_store["external_id"] == "c-7"
    assert from_store["source"] == "shop-eu"
    assert "updated_at" in from_store
    assert "terms" not in from_store and "credit_limit" not in from_store

    from_erp = owned_view(customer, "erp", CustomerRules())
    assert from_erp["credit_limit"] == {"amount": "5000.00", "currency": "EUR"}
    assert from_erp["terms"] == "Net 30"
    assert "email" not in from_erp and "addresses" not in from_erp


def test_b2b_ownership_gives_the_erp_the_contact_fields() -> None:
    rules = CustomerRules(field_owner={"email": "erp", "credit_limit": "erp"})
    assert writable_fields("erp", rules) == frozenset({"email", "credit_limit"})
    assert writable_fields("store", rules) == frozenset()


# --- erasure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"email": ".com"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "@example.com"}, "email"),
        ({"phone": "12 34"}, "phone"),
        ({"customer_external_id": "   "}, "customer_external_id"),
        ({}, "customer_external_id"),
    ],
)
def test_an_erase_request_must_name_someone(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ErasureRequest(source="shop-eu", requested_at=NOW, **values)


def test_an_erase_request_key_carries_no_email() -> None:
    by_id = ErasureRequest(source="s", customer_external_id=77, requested_at=NOW)  # type: ignore[arg-type]
    assert by_id.entity_key == "s:customer:77"
    by_email = ErasureRequest(source="s", email=" Jane@Example.com ", requested_at=NOW)
    assert by_email.email == "Jane@Example.com"
    assert "jane" not in by_email.entity_key.lower()
    assert by_email.entity_key.startswith("s:customer:erasure-")


def test_erasure_phone_forms_are_whole_numbers() -> None:
    assert erasure_phones("+49 30 123456", None) == {"+4930123456"}
    assert erasure_phones("030 123456", "DE") == {"+4930123456"}
    assert erasure_phones("030 123456", None) == {"030123456"}  # no country: the digits
    assert erasure_phones("12 34", None) == set()
    # a request without a calling code: every country's form (each compared whole)
    forms = erasure_request_phones("030 123456", None)
    assert {"+4930123456", "+3330123456", "030123456"} <= forms
    assert erasure_request_phones("030 123456", "DE") == {"+4930123456", "030123456"}
    assert erasure_request_phones("+49 30 123456", None) == {"+4930123456"}
