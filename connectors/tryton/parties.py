"""Parties (``party.party``): found by code before any create, with addresses and contacts.

The party ``code`` is unique in Tryton, so the lookup-before-create is backed by the
database: a retry racing a first attempt that timed out gets a "code must be unique" refusal,
looks the party up again and uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.tryton import records as rec
from connectors.tryton.client import TrytonClient
from connectors.tryton.options import TrytonOptions
from kernel.canonical.common import Address
from kernel.canonical.customer import Customer, ErasureRequest
from kernel.canonical.order import Order
from kernel.errors import PermanentError
from kernel.types import DeliveryContext, DeliveryResult, RemoteLink

ERASED = "Erased"
INACTIVE_TOO = {"active_test": False}
# canonical Customer fields → what they change on the party
NAME_FIELDS = frozenset({"first_name", "last_name", "company"})


class Parties:
    def __init__(self, client: TrytonClient, options: TrytonOptions) -> None:
        self.client = client
        self.options = options
        self._countries: dict[str, int | None] = {}
        self._subdivisions: dict[tuple[int, str], int | None] = {}
        self._category: int | None = None

    # --- lookups ---------------------------------------------------------------------
    async def by_code(self, code: str) -> int | None:
        ids = await self.client.search(
            rec.PARTY, [("code", "=", code)], limit=1, context=INACTIVE_TOO
        )
        return ids[0] if ids else None

    async def exists(self, party_id: int | str | None) -> int | None:
        if party_id in (None, ""):
            return None
        try:
            wanted = int(str(party_id))
        except ValueError:
            return None
        ids = await self.client.search(rec.PARTY, [("id", "=", wanted)], limit=1)
        return ids[0] if ids else None

    async def country(self, code: str | None) -> int | None:
        if not code:
            return None
        code = code.strip().upper()
        if code not in self._countries:
            ids = await self.client.search("country.country", [("code", "=", code)], limit=1)
            self._countries[code] = ids[0] if ids else None
        return self._countries[code]

    async def subdivision(self, country_id: int | None, address: Address) -> int | None:
        region = (address.region_code or "").strip().upper()
        if country_id is None or not region:
            return None
        key = (country_id, region)
        if key not in self._subdivisions:
            codes = [region] if "-" in region else [f"{address.country_code}-{region}", region]
            ids = await self.client.search(
                "country.subdivision",
                [("country", "=", country_id), ("code", "in", [c.upper() for c in codes])],
                limit=1,
            )
            self._subdivisions[key] = ids[0] if ids else None
        return self._subdivisions[key]

    async def category(self) -> int | None:
        name = self.options.customer_category
        if not name:
            return None
        if self._category is None:
            ids = await self.client.search("party.category", [("name", "=", name)], limit=1)
            if not ids:
                ids = await self.client.create("party.category", [{"name": name}])
            self._category = ids[0]
        return self._category

    # --- create ------------------------------------------------------------------------
    async def create(self, code: str, values: Mapping[str, Any]) -> int:
        """A new party with ``code``, or the one a concurrent attempt just made."""
        body = {**values, "code": code}
        if category := await self.category():
            body["categories"] = [["add", [category]]]
        try:
            (party_id,) = await self.client.create(rec.PARTY, [body])
        except PermanentError:
            found = await self.by_code(code)  # the unique code: someone was faster
            if found is None:
                raise
            return found
        return party_id

    async def address(self, party_id: int, address: Address | None) -> int | None:
        """The party's address equal to ``address`` (case and spacing aside), else a new one."""
        if address is None:
            return None
        country = await self.country(address.country_code)
        values = rec.address_values(address, country, await self.subdivision(country, address))
        rows = await self.client.search_read(
            rec.ADDRESS, [("party", "=", party_id)], ["id", *rec.ADDRESS_FIELDS]
        )
        wanted = rec.address_key(values)
        for row in rows:
            if rec.address_key(row) == wanted:
                return int(row["id"])
        (address_id,) = await self.client.create(rec.ADDRESS, [{**values, "party": party_id}])
        return address_id

    async def default_address(self, party_id: int) -> int:
        """The party's first address; an empty one if it has none (as Tryton gives a new
        party), since a sale cannot be quoted without an invoice address."""
        ids = await self.client.search(
            rec.ADDRESS, [("party", "=", party_id)], order=[("sequence", "ASC"), ("id", "ASC")]
        )
        if ids:
            return ids[0]
        (address_id,) = await self.client.create(rec.ADDRESS, [{"party": party_id}])
        return address_id

    async def set_contacts(self, party_id: int, email: str | None, phone: str | None) -> None:
        """Make ``email``/``phone`` the party's first ones: an existing mechanism of the type
        is changed, or one is created; equal values are left alone."""
        rows = await self.client.search_read(
            rec.CONTACT,
            [("party", "=", party_id), ("type", "in", ["email", "phone", "mobile"])],
            ["id", "type", "value"],
            order=[("sequence", "ASC"), ("id", "ASC")],
        )
        for kind, value in (("email", email), ("phone", phone)):
            if not value:
                continue
            same_kind = [
                r for r in rows if r["type"] == kind or (kind == "phone" and r["type"] == "mobile")
            ]
            if any(_same_contact(kind, r.get("value"), value) for r in same_kind):
                continue
            if same_kind:
                await self.client.write(rec.CONTACT, [int(same_kind[0]["id"])], {"value": value})
            else:
                await self.client.create(
                    rec.CONTACT, [{"party": party_id, "type": kind, "value": value}]
                )

    # --- orders ------------------------------------------------------------------------
    async def for_order(self, order: Order, ctx: DeliveryContext) -> tuple[int, RemoteLink | None]:
        """The order's party (the shared guest account, a linked or coded one, or new)."""
        guest = ctx.directives.get("guest_customer_id")
        if guest:
            party = await self.exists(guest)
            if party is None:
                raise PermanentError(
                    f"rules.orders.guest_account_id is {guest!r}, but Tryton has no party "
                    "with that id"
                )
            return party, None
        code = rec.order_party_code(self.options, order)  # raises for a guest without e-mail
        key = order.customer_key
        assert key is not None  # a customer id or an e-mail, checked by order_party_code
        party = await self.exists(ctx.link("customer", key)) or await self.by_code(code)
        if party is None:
            c = order.customer
            name = rec.party_name(c.first_name, c.last_name, None, c.email)
            addresses = [a for a in (order.billing_address, order.shipping_address) if a]
            if not (c.first_name or c.last_name) and addresses:
                a = addresses[0]
                name = rec.party_name(a.first_name, a.last_name, a.company, c.email)
            party = await self.create(code, {"name": name})
            await self.set_contacts(party, c.email, c.phone)
        return party, RemoteLink("customer", key, str(party))

    # --- customers ---------------------------------------------------------------------
    async def upsert_customer(self, customer: Customer, ctx: DeliveryContext) -> DeliveryResult:
        fields = ctx.directives.get("fields")
        owned = set(fields) if fields is not None else None

        def writes(*names: str) -> bool:
            return owned is None or any(n in owned for n in names)

        code = rec.party_code(self.options, customer.source, customer.external_id)
        linked = ctx.directives.get("link_to") or ctx.link("customer", customer.entity_key)
        party = await self.exists(linked) or await self.by_code(code)
        name = rec.party_name(
            customer.first_name, customer.last_name, customer.company, customer.email
        )
        if party is None:
            party = await self.create(code, {"name": name})
            what = "created"
        else:
            if writes(*NAME_FIELDS):
                await self.client.write(rec.PARTY, [party], {"name": name})
            what = "updated"
        await self.set_contacts(
            party,
            customer.email if writes("email") else None,
            customer.phone if writes("phone") else None,
        )
        if writes("addresses"):
            for address in customer.addresses:
                await self.address(party, address)
        return DeliveryResult(
            links=[RemoteLink("customer", customer.entity_key, str(party))],
            summary=f"party {party} ({code}) {what}",
        )

    async def erase(self, request: ErasureRequest, ctx: DeliveryContext) -> DeliveryResult:
        """Anonymize the person's parties: name, contacts and address lines go; inactive.

        Sales and invoices keep their references to the party (accounting records); the
        person's data on them is what the party now says.
        """
        linked = await self.exists(ctx.link("customer", request.entity_key))
        parties: list[int] = [linked] if linked else []
        codes = []
        if request.customer_external_id:
            codes.append(rec.party_code(self.options, request.source, request.customer_external_id))
        if request.email:
            codes.append(rec.guest_party_code(self.options, request.source, request.email))
        for code in codes:
            if (found := await self.by_code(code)) is not None and found not in parties:
                parties.append(found)
        if not parties:
            return DeliveryResult(
                summary=f"no Tryton party for {request.entity_key}; nothing to erase"
            )
        await self._anonymize(parties)
        return DeliveryResult(
            summary=f"anonymized and deactivated party {', '.join(map(str, parties))}"
        )

    async def _anonymize(self, parties: Sequence[int]) -> None:
        contacts = await self.client.search(
            rec.CONTACT, [("party", "in", list(parties))], context=INACTIVE_TOO
        )
        await self.client.delete(rec.CONTACT, contacts)
        addresses = await self.client.search(
            rec.ADDRESS, [("party", "in", list(parties))], context=INACTIVE_TOO
        )
        await self.client.write(
            rec.ADDRESS,
            addresses,
            {"party_name": None, "attn": None, "street": None, "postal_code": None, "city": None},
        )
        await self.client.write(rec.PARTY, list(parties), {"name": ERASED, "active": False})


def _same_contact(kind: str, have: Any, want: str) -> bool:
    if not isinstance(have, str):
        return False
    if kind == "email":
        return rec.normalized_email(have) == rec.normalized_email(want)
    digits = "".join(ch for ch in have if ch.isdigit())
    return digits != "" and digits == "".join(ch for ch in want if ch.isdigit())


__all__ = ["Parties"]
