"""Seed a freshly activated Tryton database with what a selling company needs.

Run by ``tests/tryton/server.py`` in a subprocess with the venv's Python, through trytond's
own Python API (this is setup, not the connector under test)::

    python seed_db.py <trytond.conf> <database> <seed.json>

``seed.json`` says which users, products and stock to create. What it makes: countries, the
USD/EUR currencies with rates, a company (the admin and a ``gateway`` user work in it), a
chart of accounts with receivable/payable defaults, a fiscal year around today with periods
and invoice sequences (so invoices and credit notes can be posted), an account category,
goods products whose codes are the test SKUs, a shipping service product, a carrier and
initial stock in the warehouse the stock module creates (code ``WH``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from decimal import Decimal
from typing import Any


def main(conf: str, database: str, spec_path: str) -> None:
    from trytond import config

    config.update_etc(conf)
    from trytond.pool import Pool
    from trytond.transaction import Transaction, TransactionError

    with open(spec_path) as handle:
        spec = json.load(handle)
    Pool.start()
    pool = Pool(database)
    with Transaction().start(database, 0, readonly=True):
        pool.init()
    extras: dict[str, Any] = {}
    while True:  # as trytond-admin does: a lock some step needs restarts the transaction
        with Transaction().start(database, 0, context={}, **extras) as transaction:
            try:
                company = _company(pool)
                with transaction.set_context(company=company.id):
                    _users(pool, company, spec["users"])
                    _chart(pool, company)
                    _fiscal_year(pool, company)
                    _products_and_stock(pool, company, spec)
            except TransactionError as exc:
                transaction.rollback()
                exc.fix(extras)
                continue
            transaction.commit()
            return


def _company(pool: Any) -> Any:
    Country = pool.get("country.country")
    Currency = pool.get("currency.currency")
    Rate = pool.get("currency.currency.rate")
    Party = pool.get("party.party")
    Company = pool.get("company.company")

    Country.create(
        [
            {"name": "United Kingdom", "code": "GB", "code3": "GBR"},
            {"name": "United States", "code": "US", "code3": "USA"},
            {"name": "Germany", "code": "DE", "code3": "DEU"},
            {"name": "France", "code": "FR", "code3": "FRA"},
        ]
    )
    usd, eur = Currency.create(
        [
            {"name": "US Dollar", "code": "USD", "symbol": "$", "rounding": Decimal("0.01")},
            {"name": "Euro", "code": "EUR", "symbol": "€", "rounding": Decimal("0.01")},
        ]
    )
    since = dt.date(2000, 1, 1)
    Rate.create(
        [
            {"currency": usd.id, "date": since, "rate": Decimal(1)},
            {"currency": eur.id, "date": since, "rate": Decimal("0.9")},
        ]
    )
    (party,) = Party.create([{"name": "Gateway Test Company", "addresses": [("create", [{}])]}])
    (company,) = Company.create([{"party": party.id, "currency": usd.id}])
    return company


def _users(pool: Any, company: Any, users: list[dict[str, str]]) -> None:
    User = pool.get("res.user")
    (admin,) = User.search([("login", "=", "admin")])
    User.write([admin], {"companies": [("add", [company.id])], "company": company.id})
    groups = [g.id for g in admin.groups]
    for user in users:
        User.create(
            [
                {
                    "login": user["login"],
                    "name": user["login"],
                    "password": user["password"],
                    "groups": [("add", groups)],
                    "companies": [("add", [company.id])],
                    "company": company.id,
                }
            ]
        )


def _chart(pool: Any, company: Any) -> None:
    """The English minimal chart, as the account module's own tests create it."""
    AccountTemplate = pool.get("account.account.template")
    ModelData = pool.get("ir.model.data")
    CreateChart = pool.get("account.create_chart", type="wizard")
    Account = pool.get("account.account")

    template = AccountTemplate(ModelData.get_id("account", "account_template_root_en"))
    session_id, _, _ = CreateChart.create()
    wizard = CreateChart(session_id)
    wizard.account.account_template = template
    wizard.account.company = company
    wizard.transition_create_account()
    state = wizard.states["properties"]
    names = list(wizard.properties._fields.keys())
    for name, value in state.get_defaults(wizard, "properties", names).items():
        if name in wizard.properties._fields:
            setattr(wizard.properties, name, value)
    for kind in ("receivable", "payable"):
        field = f"account_{kind}"
        if not getattr(wizard.properties, field):
            (account,) = Account.search(
                [
                    (f"type.{kind}", "=", True),
                    ("party_required", "=", True),
                    ("company", "=", company.id),
                ],
                limit=1,
            )
            setattr(wizard.properties, field, account)
    wizard.transition_create_properties()


def _fiscal_year(pool: Any, company: Any) -> None:
    Sequence = pool.get("ir.sequence.strict")
    SequenceType = pool.get("ir.sequence.type")
    FiscalYear = pool.get("account.fiscalyear")

    today = dt.date.today()
    (move_type,) = SequenceType.search([("name", "=", "Account Move")], limit=1)
    (invoice_type,) = SequenceType.search([("name", "=", "Invoice")], limit=1)
    move_sequence, invoice_sequence = Sequence.create(
        [
            {"name": "Moves", "sequence_type": move_type.id, "company": company.id},
            {"name": "Invoices", "sequence_type": invoice_type.id, "company": company.id},
        ]
    )
    # one year each side of today: a cached database stays usable for a while
    (year,) = FiscalYear.create(
        [
            {
                "name": f"{today.year - 1}-{today.year + 1}",
                "company": company.id,
                "start_date": today.replace(year=today.year - 1, month=1, day=1),
                "end_date": today.replace(year=today.year + 1, month=12, day=31),
                "move_sequence": move_sequence.id,
                "invoice_sequences": [
                    (
                        "create",
                        [
                            {
                                "company": company.id,
                                "out_invoice_sequence": invoice_sequence.id,
                                "out_credit_note_sequence": invoice_sequence.id,
                                "in_invoice_sequence": invoice_sequence.id,
                                "in_credit_note_sequence": invoice_sequence.id,
                            }
                        ],
                    )
                ],
            }
        ]
    )
    FiscalYear.create_period([year])


def _products_and_stock(pool: Any, company: Any, spec: dict[str, Any]) -> None:
    Account = pool.get("account.account")
    Category = pool.get("product.category")
    ModelData = pool.get("ir.model.data")
    Uom = pool.get("product.uom")
    Template = pool.get("product.template")
    Party = pool.get("party.party")
    Carrier = pool.get("carrier")
    Location = pool.get("stock.location")
    Move = pool.get("stock.move")

    def account(kind: str) -> Any:
        (found,) = Account.search(
            [(f"type.{kind}", "=", True), ("closed", "!=", True), ("company", "=", company.id)],
            limit=1,
        )
        return found

    revenue, expense = account("revenue"), account("expense")
    (category,) = Category.create(
        [
            {
                "name": "Sold online",
                "accounting": True,
                "account_revenue": revenue.id,
                "account_expense": expense.id,
            }
        ]
    )
    unit = Uom(ModelData.get_id("product", "uom_unit"))

    taxed = _taxed_category(pool, company, category, spec.get("tax_rate"))

    def template(name: str, sku: str, kind: str, price: str, with_tax: bool = False) -> Any:
        (created,) = Template.create(
            [
                {
                    "name": name,
                    "type": kind,
                    "default_uom": unit.id,
                    "sale_uom": unit.id,
                    "salable": True,
                    "list_price": Decimal(price),
                    "account_category": (taxed if with_tax else category).id,
                    "products": [("create", [{"suffix_code": sku}])],
                }
            ]
        )
        return created.products[0]

    products = {
        item["sku"]: template(
            item["name"], item["sku"], "goods", item["price"], bool(item.get("taxed"))
        )
        for item in spec["products"]
    }
    for item in spec.get("services", []):
        template(item["name"], item["sku"], "service", "0")
    shipping = template("Shipping", spec["shipping_sku"], "service", "0")
    (carrier_party,) = Party.create([{"name": spec["carrier"]}])
    Carrier.create(
        [
            {
                "party": carrier_party.id,
                "carrier_product": shipping.id,
                "carrier_cost_method": "product",
            }
        ]
    )

    (supplier,) = Location.search([("code", "=", "SUP")])
    (warehouse,) = Location.search([("code", "=", "WH")])
    moves = Move.create(
        [
            {
                "product": products[sku].id,
                "unit": unit.id,
                "quantity": float(quantity),
                "from_location": supplier.id,
                "to_location": warehouse.storage_location.id,
                "company": company.id,
                "unit_price": Decimal(1),
                "currency": company.currency.id,
                "effective_date": dt.date.today(),
            }
            for sku, quantity in spec["stock"].items()
        ]
    )
    Move.do(moves)


def _taxed_category(pool: Any, company: Any, category: Any, rate: str | None) -> Any:
    """A copy of ``category`` whose products carry a customer tax of ``rate``."""
    if not rate:
        return category
    Account = pool.get("account.account")
    Tax = pool.get("account.tax")
    Category = pool.get("product.category")
    (account,) = Account.search([("code", "=", "6.3.4"), ("company", "=", company.id)])
    (tax,) = Tax.create(
        [
            {
                "name": f"Sales tax {rate}",
                "description": f"Sales tax {rate}",
                "type": "percentage",
                "rate": Decimal(rate),
                "company": company.id,
                "invoice_account": account.id,
                "credit_note_account": account.id,
            }
        ]
    )
    (taxed,) = Category.copy([category], default={"name": "Sold online, taxed"})
    Category.write([taxed], {"customer_taxes": [("add", [tax.id])]})
    return taxed


if __name__ == "__main__":
    main(*sys.argv[1:4])
