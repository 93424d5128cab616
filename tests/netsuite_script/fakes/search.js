'use strict';
// Fake N/search: search.lookupFields({type, id, columns}) reads body fields of one record. A
// single select comes back as [{value, text}], a plain field as a scalar (search.lookupFields,
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4345776651.html); on
// transactions `type` is a select ({value: 'SalesOrd', text: 'Sales Order'}), and so are
// `createdfrom` and `externalid`. Governance 1 unit (SuiteScript 2.x API Governance,
// section_157072844224.html). The account describes a looked-up field as [kind, value, text].
const Type = Object.freeze({ TRANSACTION: 'transaction', ITEM: 'item', CURRENCY: 'currency', CUSTOMER: 'customer' });

module.exports = (env) => ({
  Type,
  lookupFields(options) {
    if (!options || !options.type || options.id === undefined || !Array.isArray(options.columns)) {
      throw Object.assign(new Error('options.type, options.id and options.columns are required'), { name: 'SSS_MISSING_REQD_ARGUMENT' });
    }
    env.spend(1, 'search.lookupFields');
    const row = env.account().lookup(options.type, String(options.id));
    if (!row) throw Object.assign(new Error(`no ${options.type} ${options.id}`), { name: 'SSS_INVALID_SRCH_FILTER' });
    return Object.fromEntries(options.columns.map((column) => {
      const [kind, value, text] = row[column] || ['text', ''];
      if (kind === 'select') return [column, value === null || value === '' ? [] : [{ value: String(value), text: String(text) }]];
      return [column, value === null ? '' : value];
    }));
  },
});
