'use strict';
// Fake N/record: a record.Record built from a JSON description, answering as the SuiteScript 2.x
// docs say a standard-mode record does (pages under
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/):
// - getValue returns number | Date | string | array | boolean by field type: a Date object for
//   date/time fields, true/false for every checkbox (Record.getValue, section_4273154686.html;
//   getSublistValue, section_4273166148.html); numbers for currency/float/integer, a select's
//   internal id as a string;
// - getText returns the text shown in the UI: a select's name, a date in the user's date format
//   (Record.getText; getSublistText, section_4273167233.html);
// - getField/getSublistField return a record.Field whose type names the field type (date,
//   datetimetz, select, checkbox, currency, …); getFields/getSublists/getSublistFields list ids;
// - sublist lines are indexed from 0; a bad sublist or line throws SSS_INVALID_SUBLIST_OPERATION,
//   a missing option SSS_MISSING_REQD_ARGUMENT (the Errors tables of those pages);
// - getSublistSubrecord gives a subrecord such as the address of an addressbook line
//   ("Using SuiteScript 2.x to Retrieve a Sublist Subrecord", section_4675635827.html);
// - the pricing matrix: getMatrixHeaderCount/Value and getMatrixSublistValue, columns from 0
//   (section_4599703938.html; "Pricing Sublist / Pricing Matrix", section_1502207768.html).
// Date fields: NetSuite stores a date and hands back the Date of its midnight in a time zone of
// its choosing (SOAP: the user's midnight expressed in Pacific time, "Datetime Fields",
// section_1521451348.html; server-side N/format works in Pacific time, format.format,
// section_4388843892.html). env.dateZone picks which, so a script must cope with both.
// Description: {type, id, fields: {id: [type, value, text?]}, sublists: {id: [line] | {lines,
// matrix: {fieldId: [header per column]}}}}; a line is {fieldId: [type, value, text?]}, a
// matrix field's value is the list of its columns, a summary field's value a record description.
const { midnight } = require('../zones');

const TYPE = {
  ASSEMBLY_BUILD: 'assemblybuild', ASSEMBLY_ITEM: 'assemblyitem', CREDIT_MEMO: 'creditmemo', CURRENCY: 'currency',
  CUSTOMER: 'customer', INVENTORY_ADJUSTMENT: 'inventoryadjustment', INVENTORY_ITEM: 'inventoryitem',
  INVENTORY_TRANSFER: 'inventorytransfer', ITEM_FULFILLMENT: 'itemfulfillment', ITEM_RECEIPT: 'itemreceipt',
  RETURN_AUTHORIZATION: 'returnauthorization', SALES_ORDER: 'salesorder',
};
const TRANSACTIONS = new Set(['assemblybuild', 'creditmemo', 'inventoryadjustment', 'inventorytransfer',
  'itemfulfillment', 'itemreceipt', 'returnauthorization', 'salesorder']);

function error(name, message) {
  const e = new Error(message);
  e.name = name;
  return e;
}

function need(options, ...names) {
  if (typeof options === 'string' && names.length === 1 && names[0] === 'fieldId') return { fieldId: options };
  if (!options || typeof options !== 'object') throw error('SSS_MISSING_REQD_ARGUMENT', `options is required: ${names}`);
  for (const name of names) {
    if (options[name] === undefined || options[name] === null) throw error('SSS_MISSING_REQD_ARGUMENT', `options.${name} is required`);
  }
  return options;
}

class FakeRecord {
  constructor(desc, env) {
    this.desc = desc;
    this.env = env;
    this.type = desc.type;
    this.id = desc.id === undefined ? null : Number(desc.id);
  }

  // one raw [type, value, text] cell → what getValue gives
  value(cell) {
    if (!cell) return undefined;
    const [type, raw] = cell;
    if (raw === null || raw === undefined) return type === 'checkbox' ? false : '';
    switch (type) {
      case 'date': return midnight(raw, this.env.dateZone());
      case 'datetime': case 'datetimetz': return new Date(raw);
      case 'checkbox': return raw === true || raw === 'T';
      case 'currency': case 'float': case 'integer': case 'percent': return Number(raw);
      case 'summary': return '';
      default: return String(raw);
    }
  }

  text(cell) {
    if (!cell) return undefined;
    const [type, raw, shown] = cell;
    if (raw === null || raw === undefined) return '';
    if (shown !== undefined) return String(shown);
    if (type === 'date') return this.env.formatDate(this.value(cell));
    if (type === 'checkbox') return this.value(cell) ? 'T' : 'F';
    return String(raw);
  }

  field(id, cell) {
    return cell ? { id, type: cell[0], label: id, isMandatory: false } : null;
  }

  // --- body fields ---------------------------------------------------------------------
  getValue(options) { return this.value(this.desc.fields[need(options, 'fieldId').fieldId]); }

  getText(options) { return this.text(this.desc.fields[need(options, 'fieldId').fieldId]); }

  getField(options) {
    const { fieldId } = need(options, 'fieldId');
    return this.field(fieldId, this.desc.fields[fieldId]);
  }

  getFields() { return Object.keys(this.desc.fields); }

  // --- sublists ------------------------------------------------------------------------
  sublist(sublistId) {
    const sub = (this.desc.sublists || {})[sublistId];
    if (!sub) throw error('SSS_INVALID_SUBLIST_OPERATION', `${this.type} has no sublist ${sublistId}`);
    return Array.isArray(sub) ? { lines: sub, matrix: {} } : { lines: sub.lines, matrix: sub.matrix || {} };
  }

  cell(options) {
    const { sublistId, fieldId, line } = need(options, 'sublistId', 'fieldId', 'line');
    const { lines } = this.sublist(sublistId);
    if (!Number.isInteger(line) || line < 0 || line >= lines.length) {
      throw error('SSS_INVALID_SUBLIST_OPERATION', `${sublistId} has no line ${line} (lines start at 0)`);
    }
    return lines[line][fieldId];
  }

  getSublists() { return Object.keys(this.desc.sublists || {}); }

  getLineCount(options) { return this.sublist(need(options, 'sublistId').sublistId).lines.length; }

  getSublistFields(options) {
    const { lines } = this.sublist(need(options, 'sublistId').sublistId);
    return Array.from(new Set(lines.flatMap((l) => Object.keys(l))));
  }

  getSublistValue(options) { return this.value(this.cell(options)); }

  getSublistText(options) { return this.text(this.cell(options)); }

  getSublistField(options) { return this.field(options.fieldId, this.cell(options)); }

  getSublistSubrecord(options) {
    const cell = this.cell(options);
    if (!cell || cell[0] !== 'summary') throw error('FIELD_1_IS_NOT_A_SUBRECORD_FIELD', `${options.fieldId} is not a subrecord field`);
    return new FakeRecord({ type: 'address', fields: {}, ...cell[1] }, this.env);
  }

  // --- pricing matrix ------------------------------------------------------------------
  getMatrixHeaderCount(options) {
    const { sublistId, fieldId } = need(options, 'sublistId', 'fieldId');
    return (this.sublist(sublistId).matrix[fieldId] || []).length;
  }

  getMatrixHeaderValue(options) {
    const { sublistId, fieldId, column } = need(options, 'sublistId', 'fieldId', 'column');
    const header = this.sublist(sublistId).matrix[fieldId] || [];
    if (column < 0 || column >= header.length) throw error('SSS_INVALID_SUBLIST_OPERATION', `no column ${column}`);
    return header[column] === null ? '' : Number(header[column]);
  }

  getMatrixSublistValue(options) {
    const { column } = need(options, 'sublistId', 'fieldId', 'column', 'line');
    const cell = this.cell(options);
    if (!cell || cell[0] !== 'matrix') throw error('SSS_INVALID_SUBLIST_OPERATION', `${options.fieldId} is not a matrix field`);
    const v = cell[1][column];
    return v === null || v === undefined ? '' : Number(v);
  }
}

module.exports = (env) => ({
  Type: TYPE,
  FakeRecord,
  // record.load: the account's records; governance 10 units for a transaction, 5 for another
  // standard record (SuiteScript 2.x API Governance, section_157072844224.html)
  load(options) {
    const { type, id } = need(options, 'type', 'id');
    env.spend(TRANSACTIONS.has(type) ? 10 : 5, `record.load ${type}`);
    const desc = env.account().recordOf(type, String(id));
    if (!desc) throw error('RCRD_DSNT_EXIST', `That record does not exist. ${type} ${id}`);
    return new FakeRecord(desc, env);
  },
});
