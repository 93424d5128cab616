'use strict';
// Fake N/query: query.runSuiteQL({query, params}) runs SuiteQL with ? placeholders and returns a
// query.ResultSet whose asMappedResults() gives one object per row keyed by column name; at most
// 5,000 rows; 10 units (query.runSuiteQL(options),
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_157960542026.html).
// Only the statements the script is meant to run are understood, answered from the account's
// SuiteQL tables: item (item.itemid is the item's own name; fullname is "Parent : Child", see
// https://timdietrich.me/blog/netsuite-suiteql-matrix-items) and aggregateitemlocation (per item
// and location, for every inventory-type item: quantityonhand, quantitycommitted,
// quantityonorder, quantityavailable, … as public SuiteQL reads it, e.g. "AIL.QuantityOnHand,
// AIL.QuantityCommitted FROM AggregateItemLocation AS AIL"; the same source the connector's poll
// and simulators/netsuite/schema.py use). A column the account lacks fails the whole query, as
// SuiteQL does. Anything else fails loudly, so the script cannot drift from what is tested.
const ITEMS = /^SELECT item\.id, item\.itemid FROM item WHERE item\.id IN \(((?:\?, )*\?)\)$/;
const STOCK = new RegExp('^SELECT ail\\.item, item\\.itemid, ail\\.location, ail\\.quantityonhand, '
  + 'ail\\.quantitycommitted, ail\\.quantityonorder((?:, ail\\.[a-z0-9_]+)*) FROM aggregateitemlocation ail '
  + 'INNER JOIN item ON item\\.id = ail\\.item WHERE ail\\.item IN \\(((?:\\?, )*\\?)\\)'
  + '(?: AND ail\\.location IN \\(((?:\\?, )*\\?)\\))? ORDER BY ail\\.item, ail\\.location$');
const count = (marks) => (marks ? marks.split(',').length : 0);

function fail(message) {
  return Object.assign(new Error(message), { name: 'SSS_SEARCH_ERROR_OCCURRED' });
}

module.exports = (env) => ({
  runSuiteQL(options) {
    const { query, params = [] } = typeof options === 'string' ? { query: options } : options;
    env.spend(10, 'query.runSuiteQL');
    const tables = env.account().suiteql;
    let rows;
    let m = ITEMS.exec(query);
    if (m) {
      if (count(m[1]) !== params.length) throw fail(`${count(m[1])} placeholders, ${params.length} params`);
      const ids = new Set(params.map(String));
      rows = tables.item.filter((r) => ids.has(String(r.id))).map((r) => ({ id: r.id, itemid: r.itemid }));
    } else if ((m = STOCK.exec(query))) {
      const custom = m[1] ? m[1].split(', ail.').slice(1) : [];
      const [items, locations] = [count(m[2]), count(m[3])];
      if (items + locations !== params.length) throw fail(`${items + locations} placeholders, ${params.length} params`);
      for (const column of custom) {
        if (!tables.aggregateitemlocationColumns.includes(column)) throw fail(`Field '${column}' for record 'aggregateitemlocation' was not found.`);
      }
      const itemIds = new Set(params.slice(0, items).map(String));
      const locIds = locations ? new Set(params.slice(items).map(String)) : null;
      const itemid = Object.fromEntries(tables.item.map((r) => [String(r.id), r.itemid]));
      rows = tables.aggregateitemlocation
        .filter((r) => itemIds.has(String(r.item)) && (!locIds || locIds.has(String(r.location))))
        .sort((a, b) => a.item - b.item || a.location - b.location)
        .map((r) => Object.fromEntries(['item', 'itemid', 'location', 'quantityonhand', 'quantitycommitted', 'quantityonorder', ...custom]
          .map((c) => [c, c === 'itemid' ? itemid[String(r.item)] : (r[c] === undefined ? null : r[c])])));
    } else {
      throw fail(`fake N/query does not know this statement: ${query}`);
    }
    if (rows.length > 5000) throw fail('runSuiteQL returns at most 5000 results');
    return { types: [], columns: [], results: rows.map((r) => ({ values: Object.values(r) })), asMappedResults: () => rows };
  },
});
