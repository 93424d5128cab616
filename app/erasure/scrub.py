"""Scrubbing one person's data out of stored values: JSON documents, raw bodies, text, keys.

Only ever applied to rows the erasure job has found to belong to the person (their events,
the raw webhooks and deliveries of those events, their findings). Inside such a row:

- every value of a *personal field* becomes "[erased]": names, e-mail, phone, company,
  address lines, city, postal code, notes, browser IP and client details, the ``name`` of
  an address (a dict that also has first/last name or address fields) — but not the
  ``name`` of an order ("#1001") or of a line item, and never ids, SKUs, titles, amounts;
- every occurrence of the person's identifying strings (e-mail, its URL-encoded and
  id-like forms, phone numbers in any spelling of the same digits, street lines, full
  names) is replaced wherever it is; first and last names only as whole words and not in
  titles, SKUs, ids or numbers.

A row shared with other people (a raw webhook that produced events of several people) is
scrubbed *partially*: personal fields go only in the objects that contain one of the
person's identifying strings (and the objects around them), so the others' data stays.

Walks use an explicit stack (no recursion) and stop at ``MAX_DEPTH``: whatever is nested
deeper in the person's rows is replaced as a whole, so a hostile 10 000-deep field can
neither crash the job nor hide data below the cap.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from app.flows.customers.rules import CALLING_CODES

ERASED = "[erased]"
MAX_DEPTH = 32
MIN_STRONG = 4  # identifying strings shorter than this are matched only as personal fields
MIN_NAME = 2

# Personal fields, by key with case, "_" and "-" ignored (first_name = firstName = firstname).
PERSON_KEYS = frozenset(
    {
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "altname",
        "entityid",
        "email",
        "contactemail",
        "customeremail",
        "emailaddress",
        "altemail",
        "phone",
        "mobilephone",
        "altphone",
        "homephone",
        "addrphone",
        "fax",
        "company",
        "companyname",
        "address1",
        "address2",
        "address3",
        "addr1",
        "addr2",
        "addr3",
        "line1",
        "line2",
        "street",
        "streetaddress",
        "addressee",
        "attention",
        "addrtext",
        "shipaddress",
        "billaddress",
        "city",
        "zip",
        "zipcode",
        "postalcode",
        "postcode",
        "note",
        "notes",
        "comments",
        "memo",
        "browserip",
        "clientip",
        "ipaddress",
        "latitude",
        "longitude",
    }
)
# Fields whose whole content is about the person (free-form attributes, the browser).
PERSON_SUBTREES = frozenset({"clientdetails", "noteattributes", "customattributes"})
# ``name`` is a person's name only next to these (an address); else an order number or a
# product name.
_NAME_GUARD = frozenset(
    {"firstname", "lastname", "address1", "addr1", "line1", "zip", "postalcode", "addressee"}
)
# Where first/last names are not looked for: product and order data that must stay.
_NO_NAME_MATCH = frozenset(
    {
        "title",
        "name",
        "sku",
        "varianttitle",
        "vendor",
        "producttype",
        "currency",
        "currencycode",
        "gateway",
        "code",
        "status",
        "kind",
        "type",
        "topic",
        "sourcename",
        "url",
        "method",
    }
)
_NO_NAME_SUFFIXES = ("id", "ids", "sku", "number", "key", "keys")
_JSON_TEXT_FIELD = re.compile(r'"(?P<key>[A-Za-z_][\w-]{0,63})"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)"')
_PHONE_LIKE = re.compile(r"(?<![\w+(])[+(]?\d[\d \t().\-/]{5,}\d(?!\w)")


_CALLING_CODES = frozenset(CALLING_CODES.values())


def norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def _no_name_match(nkey: str | None) -> bool:
    return nkey is not None and (nkey in _NO_NAME_MATCH or nkey.endswith(_NO_NAME_SUFFIXES))


def key_token(value: str) -> str:
    """What an identifier becomes inside a key (``shop:customer:guest:<e-mail>``): the same
    token wherever it occurs, so rows that referred to one another still do."""
    return "erased-" + hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


@dataclass
class Person:
    """The identifying strings of one data subject, from their records and the request."""

    emails: set[str] = field(default_factory=set)  # normalized
    strong: set[str] = field(default_factory=set)  # matched anywhere, any case
    names: set[str] = field(default_factory=set)  # matched as whole words
    phone_digits: set[str] = field(default_factory=set)
    _compiled: tuple[Any, ...] | None = None

    # --- building ------------------------------------------------------------------------
    def add_email(self, value: Any) -> None:
        if not isinstance(value, str) or "@" not in value or value == ERASED:
            return
        email = value.strip().lower()
        self.emails.add(email)
        self._strong(value.strip(), email, quote(email, safe=""), quote_plus(email))
        # ids systems derive from an e-mail: NetSuite's eid (shop-guest-jane_doe_example_com)
        self._strong(re.sub(r"[^a-z0-9_-]", "_", email))
        self._strong(re.sub(r"[^a-z0-9]+", "_", email).strip("_"))

    def add_phone(self, value: Any, forms: Iterable[str] = ()) -> None:
        if not isinstance(value, str) or value == ERASED:
            return
        digits = re.sub(r"\D", "", value)
        if len(digits) < 7:
            return
        self._strong(value.strip())
        found = {digits}
        for form in forms:
            self._strong(form)
            found.add(re.sub(r"\D", "", form))
        for number in list(found):
            # the same number written nationally: without its calling code, with a trunk 0
            for code in _CALLING_CODES:
                rest = number[len(code) :]
                if number.startswith(code) and len(rest) >= 7:
                    found.update({rest, "0" + rest})
        self.phone_digits |= found

    def add_name(self, first: Any, last: Any) -> None:
        parts = [p.strip() for p in (first, last) if isinstance(p, str) and p.strip() != ERASED]
        parts = [p for p in parts if p]
        for part in parts:
            for word in part.split():
                if len(word) >= MIN_NAME and any(ch.isalpha() for ch in word):
                    self.names.add(word)
        if len(parts) == 2:
            self._strong(" ".join(" ".join(parts).split()))

    def add_street(self, value: Any) -> None:
        if isinstance(value, str) and value.strip() != ERASED:
            self._strong(" ".join(value.split()))

    def _strong(self, *values: str) -> None:
        for value in values:
            if len(value) >= MIN_STRONG and value.casefold() not in ERASED:
                self.strong.add(value)
        self._compiled = None

    def __bool__(self) -> bool:
        return bool(self.strong or self.names or self.phone_digits)

    # --- matching ------------------------------------------------------------------------
    def _patterns(self) -> tuple[Any, ...]:
        if self._compiled is None:
            strong = sorted(self.strong, key=len, reverse=True)
            names = sorted(self.names, key=len, reverse=True)
            self._compiled = (
                re.compile("|".join(re.escape(s) for s in strong), re.IGNORECASE)
                if strong
                else None,
                re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b", re.I)
                if names
                else None,
            )
        return self._compiled

    def text(self, value: str, *, names: bool = True, fields: bool = False) -> tuple[str, int]:
        """``value`` with every occurrence of the person replaced by "[erased]".

        ``fields``: also the values of personal fields written as JSON text (a body cut at
        the log's length limit is no longer parseable JSON).
        """
        strong, name_re = self._patterns()
        count = 0
        if fields and '":' in value:
            value, n = _erase_json_text_fields(value)
            count += n
        if strong is not None:
            value, n = strong.subn(ERASED, value)
            count += n
        if self.phone_digits and any(ch.isdigit() for ch in value):
            value, n = self._phones(value)
            count += n
        if names and name_re is not None:
            value, n = name_re.subn(ERASED, value)
            count += n
        return value, count

    def _phones(self, value: str) -> tuple[str, int]:
        hits = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal hits
            if re.sub(r"\D", "", match.group(0)) in self.phone_digits:
                hits += 1
                return ERASED
            return match.group(0)

        return _PHONE_LIKE.sub(replace, value), hits

    def key(self, value: str) -> tuple[str, int]:
        """A key column (entity key, ordering key, link key) without the person's e-mail:
        each occurrence becomes a stable token, so keys stay distinct and consistent."""
        count = 0
        for email in self.emails:
            pattern = re.compile(re.escape(email), re.IGNORECASE)
            value, n = pattern.subn(key_token(email), value)
            count += n
        return value, count


def _erase_json_text_fields(value: str) -> tuple[str, int]:
    hits = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal hits
        key = match.group("key")
        if norm_key(key) in PERSON_KEYS and match.group("value") not in ("", ERASED):
            hits += 1
            return f'"{key}": "{ERASED}"'
        return match.group(0)

    return _JSON_TEXT_FIELD.sub(replace, value), hits


# --- documents ----------------------------------------------------------------------------


def scrub_doc(doc: Any, person: Person, *, whole: bool, embedded: bool = True) -> tuple[Any, int]:
    """Scrub a JSON document in place; returns it (a new value if it is a bare string)
    and how many values were replaced.

    ``whole``: the document is the person's (their order, their customer record, the log
    of a delivery of it): every personal field goes. Otherwise only those in objects that
    contain one of the person's identifying strings.
    """
    if isinstance(doc, str):
        return person.text(doc, fields=whole)
    if not isinstance(doc, dict | list):
        return doc, 0
    nodes: list[dict[str, Any] | list[Any]] = []
    parents: list[int] = []
    contexts: list[str | None] = []  # normalized key the container sits under
    count = 0
    stack: list[tuple[dict[str, Any] | list[Any], int, int, str | None]] = [(doc, -1, 0, None)]
    while stack:
        node, parent, depth, context = stack.pop()
        index = len(nodes)
        nodes.append(node)
        parents.append(parent)
        contexts.append(context)
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for key, value in items:
            if not isinstance(value, dict | list):
                continue
            nkey = norm_key(key) if isinstance(key, str) else context
            if depth + 1 >= MAX_DEPTH:
                node[key] = ERASED  # type: ignore[index]
                count += 1
            elif whole and nkey in PERSON_SUBTREES:
                continue  # replaced as a whole below; no need to walk it
            else:
                stack.append((value, index, depth + 1, nkey))

    matched = [False] * len(nodes)
    for index in range(len(nodes) - 1, -1, -1):
        node = nodes[index]
        if isinstance(node, list):
            own = 0
            for i, item in enumerate(node):
                if isinstance(item, str):
                    new, n = _scrub_string(item, contexts[index], person, whole, embedded)
                    if n:
                        node[i] = new
                        own += n
        else:
            own = _scrub_dict(node, person, whole, embedded, matched[index])
        count += own
        if (own or matched[index]) and parents[index] >= 0:
            matched[parents[index]] = True
    return doc, count


def _scrub_string(
    value: str, nkey: str | None, person: Person, whole: bool, embedded: bool
) -> tuple[str, int]:
    stripped = value.lstrip()
    if embedded and nkey == "body" and stripped[:1] in ("{", "["):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict | list):
            parsed, n = scrub_doc(parsed, person, whole=whole, embedded=False)
            return (json.dumps(parsed, ensure_ascii=False), n) if n else (value, 0)
    return person.text(value, names=not _no_name_match(nkey), fields=whole)


def _scrub_dict(
    node: dict[str, Any], person: Person, whole: bool, embedded: bool, below: bool
) -> int:
    count = 0
    renamed = False
    pairs: list[tuple[Any, Any]] = []
    for key, value in node.items():
        nkey = norm_key(key) if isinstance(key, str) else None
        if isinstance(value, str):
            new, n = _scrub_string(value, nkey, person, whole, embedded)
            if n:
                value = new
                count += n
        if isinstance(key, str):
            _, n = person.text(key, names=False)
            if n:
                key, suffix = ERASED, 2
                while key in node or any(k == key for k, _ in pairs):
                    key, suffix = f"{ERASED}#{suffix}", suffix + 1
                renamed = True
                count += 1
        pairs.append((key, value))
    if whole or count or below:
        keys = {norm_key(k) for k, _ in pairs if isinstance(k, str)}
        is_address = bool(keys & _NAME_GUARD)
        for i, (key, value) in enumerate(pairs):
            if not isinstance(key, str):
                continue
            nkey = norm_key(key)
            personal = nkey in PERSON_KEYS or (nkey == "name" and is_address)
            if personal and isinstance(value, str) and value not in ("", ERASED):
                pairs[i] = (key, ERASED)
                count += 1
            elif personal and isinstance(value, int | float) and not isinstance(value, bool):
                pairs[i] = (key, None)
                count += 1
            elif nkey in PERSON_SUBTREES and value not in (None, "", [], {}, ERASED):
                pairs[i] = (key, ERASED)
                count += 1
    if renamed or count:
        node.clear()
        node.update(pairs)
    return count


def scrub_body(body: bytes, person: Person, *, whole: bool) -> tuple[bytes, int]:
    """A raw webhook body: JSON scrubbed as a document (re-serialized only when something
    changed, so untouched bodies keep their exact bytes); anything else as text, with the
    URL-encoded forms of the person's strings too."""
    try:
        parsed: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = _NOT_JSON
    if parsed is not _NOT_JSON:
        cleaned, count = scrub_doc(parsed, person, whole=whole)
        if not count:
            return body, 0
        return json.dumps(cleaned, ensure_ascii=False).encode("utf-8"), count
    text = body.decode("utf-8", errors="surrogateescape")
    cleaned_text, count = person.text(text, fields=whole)
    if not count:
        return body, 0
    return cleaned_text.encode("utf-8", errors="surrogateescape"), count


_NOT_JSON = object()
