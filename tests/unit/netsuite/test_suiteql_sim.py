"""The simulator's SuiteQL is a real SQL engine over NetSuite's documented tables: any correct
query works, a field a standard account lacks fails with NetSuite's own 400."""

from __future__ import annotations

from typing import Any

import httpx

from connectors.netsuite import wire
from connectors.netsuite.auth import TbaCredentials, sign_request
from simulators.netsuite.simulator import NetSuiteSimulator
from tests.unit.netsuite.conftest import BASE_URL, RECORDS, context, event_for, realistic_order

URL = f"{BASE_URL}/services/rest/query/v1/suiteql"


async def query(
    http: httpx.AsyncClient, tba: TbaCredentials, q: str, limit: int = 1000
) -> httpx.Response:
    url = f"{URL}?limit={limit}&offset=0"
    headers = {
        "Authorization": sign_request("POST", url, tba),
        "Prefer": "transient",
        "Content-Type": "application/json",
    }
    return await http.post(url, content=wire.dumps({"q": q}), headers=headers)


async def rows(http: httpx.AsyncClient, tba: TbaCredentials, q: str) -> list[dict[str, Any]]:
    answer = await query(http, tba, q)
    assert answer.status_code == 200, answer.text
    return [{k: v for k, v in r.items() if k != "links"} for r in answer.json()["items"]]


async def test_a_custom_field_the_account_lacks_fails_as_netsuite_fails(
    sim_http: httpx.AsyncClient, tba: TbaCredentials
) -> None:
    answer = await query(sim_http, tba, "SELECT item.id, item.custitem_gw_sale_price FROM item")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/vnd.oracle.resource+json")
    # the shape NetSuite answers (captured from a live account; see simulators/netsuite/suiteql.py)
    assert answer.json() == {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid search query. Detailed unprocessed description follows. "
                "Search error occurred: Field 'custitem_gw_sale_price' for record 'item' "
                "was not found.",
                "o:errorCode": "INVALID_PARAMETER",
                "o:errorQueryParam": "q",
            }
        ],
    }
    unknown = await query(sim_http, tba, "SELECT id FROM employee")
    assert unknown.json()["o:errorDetails"][0]["detail"].endswith("Invalid search type: employee.")
    bare = await query(sim_http, tba, "SELECT not_a_field FROM customer")
    assert (
        "Unknown identifier 'not_a_field'. Available identifiers are: {customer=customer}"
        in (bare.json()["o:errorDetails"][0]["detail"])
    )


async def test_a_field_the_account_was_given_can_be_queried(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient, tba: TbaCredentials
) -> None:
    sim.erp.custom_columns = {"item": ["custitem_gw_sale_price"]}
    sim.erp.set_price("1042", {"custitem_gw_sale_price": "9.99"})
    found = await rows(
        sim_http, tba, "SELECT item.id, item.custitem_gw_sale_price FROM item WHERE item.id = 1042"
    )
    assert found == [{"id": "1042", "custitem_gw_sale_price": "9.99"}]


async def test_any_correct_query_works_over_transactions_the_way_netsuite_keeps_them(
    sim: NetSuiteSimulator,
    sim_http: httpx.AsyncClient,
    sim_connector: Any,
    tba: TbaCredentials,
) -> None:
    sim.erp.set_stock("1042", "1", {"on_hand": 10})
    before = await rows(
        sim_http,
        tba,
        "SELECT TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS m FROM item WHERE id = 1042",
    )
    await sim_connector.deliver(event_for(realistic_order()), context())
    order_id = sim.record_by_eid("salesOrder", "shop-eu-1001")["id"]  # type: ignore[index]
    sim.erp.fulfil(order_id, {"lines": {"1042": 2}})
    # a query shape the connector never sends (Tim Dietrich's "SUM(Quantity) * -1" of the
    # inventory-affecting fulfilment lines), with joins, grouping and BUILTIN.DF
    shipped = await rows(
        sim_http,
        tba,
        "SELECT BUILTIN.DF(tl.item) AS item, SUM(tl.quantity) * -1 AS shipped "
        "FROM transactionline tl INNER JOIN transaction t ON t.id = tl.transaction "
        "WHERE t.type = 'ItemShip' AND tl.isinventoryaffecting = 'T' GROUP BY tl.item",
    )
    assert shipped == [{"item": "1042", "shipped": "2"}]
    # the fulfilment's order is the main line's createdfrom; sales lines are negative
    linked = await rows(
        sim_http,
        tba,
        "SELECT src.tranid, src.type, t.status FROM transaction t "
        "INNER JOIN transactionline ml ON ml.transaction = t.id AND ml.mainline = 'T' "
        "INNER JOIN transaction src ON src.id = ml.createdfrom WHERE t.type = 'ItemShip'",
    )
    order_number = sim.record_by_eid("salesOrder", "shop-eu-1001")["tranId"]  # type: ignore[index]
    assert linked == [{"tranid": order_number, "type": "SalesOrd", "status": "C"}]
    ordered = await rows(
        sim_http,
        tba,
        "SELECT tl.quantity, tl.quantityshiprecv FROM transactionline tl "
        f"WHERE tl.transaction = {order_id} AND tl.mainline = 'F' AND tl.item = 1042",
    )
    assert ordered == [{"quantity": "-3", "quantityshiprecv": "2"}]
    # stock moved through transactions; the item record itself was never saved
    after = await rows(
        sim_http,
        tba,
        "SELECT TO_CHAR(lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS m FROM item WHERE id = 1042",
    )
    assert after == before
    stock = await rows(
        sim_http,
        tba,
        "SELECT quantityonhand, quantitycommitted, quantityavailable FROM aggregateitemlocation "
        "WHERE item = 1042 AND location = 1",
    )
    assert stock == [{"quantityonhand": "8", "quantitycommitted": "1", "quantityavailable": "7"}]


async def test_values_come_back_as_netsuite_writes_them(
    sim: NetSuiteSimulator, sim_http: httpx.AsyncClient, sim_connector: Any, tba: TbaCredentials
) -> None:
    await sim_connector.deliver(event_for(realistic_order()), context())
    (row,) = await rows(
        sim_http,
        tba,
        "SELECT t.tranid, t.trandate, BUILTIN.DF(t.currency) AS currencyname, "
        "cur.symbol AS currency, t.memo, t.shipcarrier FROM transaction t "
        "LEFT JOIN currency cur ON cur.id = t.currency WHERE t.type = 'SalesOrd' "
        "FETCH FIRST 1 ROWS ONLY",
    )
    # a date without TO_CHAR in the account's display format; BUILTIN.DF shows the
    # currency's name (its ISO code is the symbol); a null column is left out of the row
    assert row["trandate"] == "11/1/2026"
    assert (row["currencyname"], row["currency"]) == ("US Dollar", "USD")
    assert "shipcarrier" not in row and row["tranid"] == "SO1001"


async def test_kept_tables_answer_as_tables_built_for_each_query(tba: TbaCredentials) -> None:
    """``--query-cache``: the tables are built once and kept until a request writes; every
    answer is the one a simulator building them for each query gives."""
    kept = NetSuiteSimulator(tba, items=("1042", "959"), query_cache=True)
    fresh = NetSuiteSimulator(tba, items=("1042", "959"))
    stock = (
        "SELECT ail.item, BUILTIN.DF(ail.item) AS sku, ail.quantityonhand FROM "
        "aggregateitemlocation ail ORDER BY ail.item"
    )
    names = "SELECT item.id, item.displayname FROM item ORDER BY item.id"
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"{BASE_URL}/_sim/stock", {"item": "1042", "location": "1", "on_hand": 7}),
        ("POST", f"{BASE_URL}/_sim/seed", {"items": [{"id": "77", "itemId": "MUG"}]}),
        ("PATCH", f"{RECORDS}/inventoryItem/959", {"displayName": "Blue L"}),
        ("POST", f"{BASE_URL}/_sim/stock", {"item": "MUG", "location": "2", "on_hand": 3}),
        ("POST", f"{BASE_URL}/_sim/reset", {}),
    ]
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=kept.app)) as kept_http,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh.app)) as fresh_http,
    ):
        for method, url, body in [("GET", "", {}), *writes]:
            for http in (kept_http, fresh_http):
                if method != "GET":
                    headers = {"Authorization": sign_request(method, url, tba)}
                    answer = await http.request(method, url, json=body, headers=headers)
                    assert answer.status_code < 300, answer.text
            for q in (stock, names):
                assert await rows(kept_http, tba, q) == await rows(fresh_http, tba, q), (url, q)
            built = kept.tables._built
            assert built is not None
            await rows(kept_http, tba, stock)
            assert kept.tables._built is built  # no write in between: the same tables
    assert fresh.tables._built is None  # built for each query, never kept
