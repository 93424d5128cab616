"""What an order needs to read from NetSuite before it is written: the currency's internal id
and the account's own customers that may be the order's customer.

Both are SuiteQL over standard tables (no custom field):

- ``currency`` (``id``, ``symbol``: the ISO code; Oracle, "Format of Selects and
  References", section_1545142037: a reference is ``{"id": "1", "refName": "USD"}``, the
  ``refName`` being the display text, so a body sets ``currency`` as ``{"id": …}``). Read
  once per connector and kept: an account's currencies change about never.
- ``customer`` with its address book (``customeraddressbook`` → ``addressbookaddress`` =
  ``customeraddressbookentityaddress.nkey``, whose ``zip`` and ``country`` the name +
  postcode rule needs; the join as public SuiteQL writes it, e.g. "LEFT JOIN
  customerAddressbook ON a.id = b.entity LEFT JOIN customerAddressbookEntityAddress ON
  b.addressbookaddress = c.nkey"). E-mails compare case-folded (``LOWER``); a phone is
  found by the digits it ends with (``REGEXP_REPLACE(phone, '[^0-9]', '')``, a supported
  SuiteQL function: Oracle, "SuiteQL Supported and Unsupported Functions",
  section_158513731864) and then compared in E.164 by ``kernel.matching``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.netsuite.client import NetSuiteClient
from kernel.errors import PermanentError
from kernel.matching import Candidate, Identity, merge_rows, national_digits

MAX_CANDIDATE_ROWS = 200
# the personal columns of a candidate, masked in attempt logs (NetSuiteConnector declares them)
CANDIDATE_FIELDS = frozenset(
    {
        "match_label",
        "match_email",
        "match_phone",
        "match_first",
        "match_last",
        "match_company",
        "match_zip",
    }
)  # one query page; far more than any person has records


def literal(text: str) -> str:
    """A SuiteQL (Oracle) string literal: quotes doubled, so no value can end it."""
    return "'" + text.replace("'", "''") + "'"


class Currencies:
    """ISO code → internal id, read from the account once.

    Once per process, not once per delivery in flight: the deliveries a worker starts
    together (``max_concurrency`` of them) wait for the one query instead of each sending
    it, which would spend the account's concurrency limit on the same answer."""

    def __init__(self, client: NetSuiteClient) -> None:
        self.client = client
        self._ids: dict[str, str] | None = None
        self._reading = asyncio.Lock()

    async def id_of(self, code: str, base_currency: str) -> str | None:
        """The currency's internal id; None for the base currency of an account without
        Multiple Currencies (no ``currency`` rows: NetSuite then takes the subsidiary's)."""
        ids = self._ids if self._ids is not None else await self._read()
        found = ids.get(code.upper())
        if found is None and not ids and code.upper() == base_currency.upper():
            return None
        if found is None:
            raise PermanentError(
                f"NetSuite has no currency {code} (Lists > Accounting > Currencies); add it, "
                "or check the Multiple Currencies feature, then replay the delivery"
            )
        return found

    async def _read(self) -> dict[str, str]:
        async with self._reading:
            if self._ids is None:  # not read by the delivery this one waited for
                data = await self.client.suiteql("SELECT id, symbol FROM currency", 1000, 0)
                self._ids = {
                    str(row.get("symbol") or "").upper(): str(row["id"])
                    for row in data.get("items", [])
                    if row.get("id") not in (None, "")
                }
            return self._ids


def customer_query(who: Identity, on: list[str], ours: str) -> str:
    """The SuiteQL that finds every active customer ``who`` may be (and the gateway's own)."""
    conditions = [f"c.externalid = {literal(ours)}"]
    if "email" in on and who.email:
        conditions.append(f"LOWER(c.email) = {literal(who.email)}")
    if "phone" in on:
        for phone in who.phones:
            digits = national_digits(phone)
            conditions.append(f"REGEXP_REPLACE(c.phone, '[^0-9]', '') LIKE '%{digits}'")
    if "name_postcode" in on and who.last_name and who.postcodes:
        zips = ", ".join(literal(p) for p in who.postcodes)
        conditions.append(
            f"(LOWER(c.lastname) = {literal(who.last_name)} "
            f"AND UPPER(REPLACE(a.zip, ' ', '')) IN ({zips}))"
        )
    # the personal columns come back under their own names (CANDIDATE_FIELDS), which the
    # connector declares sensitive: the answer holds other people's records, and an attempt
    # log must not keep them where no erase request of theirs would look
    return (
        "SELECT c.id, c.externalid, c.entityid AS match_label, c.email AS match_email, "
        "c.phone AS match_phone, c.firstname AS match_first, c.lastname AS match_last, "
        "c.companyname AS match_company, a.zip AS match_zip, a.country FROM customer c "
        "LEFT JOIN customeraddressbook b ON b.entity = c.id "
        "LEFT JOIN customeraddressbookentityaddress a ON a.nkey = b.addressbookaddress "
        f"WHERE c.isinactive = 'F' AND ({' OR '.join(conditions)}) ORDER BY c.id"
    )


async def customer_candidates(
    client: NetSuiteClient, who: Identity, on: list[str], ours: str
) -> list[Candidate]:
    """The account's customers that share a key with ``who``; the gateway's own record (by
    external id ``ours``) is among them, marked."""
    data = await client.suiteql(customer_query(who, on, ours), MAX_CANDIDATE_ROWS, 0)
    rows: list[dict[str, Any]] = []
    for row in data.get("items", []):
        name = " ".join(p for p in (row.get("match_first"), row.get("match_last")) if p)
        rows.append(
            {
                "id": row.get("id"),
                "label": row.get("match_label") or row.get("match_company") or name,
                "email": row.get("match_email"),
                "phone": row.get("match_phone"),
                "first_name": row.get("match_first"),
                "last_name": row.get("match_last"),
                "postcode": row.get("match_zip"),
                "country": row.get("country"),
                "external_id": row.get("externalid"),
            }
        )
    return merge_rows(rows, ours=ours)


__all__ = ["CANDIDATE_FIELDS", "Currencies", "customer_candidates", "customer_query", "literal"]
