/**
 * erp-gateway user-event script (example). Deploy on inventory item, customer, item fulfillment,
 * credit memo and return authorization. Parameters: custscript_gw_url
 * (https://gateway.example.com/webhooks/<connection id>) and custscript_gw_secret (script id of
 * an API Secret holding the connection's webhook_secret). Contract: inbound.py and records.py;
 * field ids go as NetSuite names them (records.py reads "itemid" for "itemId").
 * @NApiVersion 2.1
 * @NScriptType UserEventScript
 */
define(['N/https', 'N/crypto', 'N/encode', 'N/runtime', 'N/search'], (https, crypto, encode, runtime, search) => {
  const LINES = {  // sublist → [our key, its fields]; 'item'/'location' are sent as their names
    item: ['items', ['item', 'quantity', 'amount', 'custcol_gw_disposition', 'custcol_gw_return_reason']],
    locations: ['locations', ['location', 'quantityonhand', 'quantitycommitted', 'quantityonorder']],
    package: ['packages', ['packagetrackingnumber', 'packageweight']],
    addressbook: ['addresses', ['defaultbilling', 'defaultshipping', 'addressbookaddress_text']],
  };
  const text = (v) => (v === null || v === undefined ? '' : String(v)); // never a float on the wire
  const lines = (rec, id, fields) => Array.from({ length: rec.getLineCount({ sublistId: id }) }, (_, line) =>
    Object.fromEntries(fields.map((f) => [f === 'item' ? 'itemid' : f, text(['item', 'location'].includes(f)
      ? rec.getSublistText({ sublistId: id, fieldId: f, line }) : rec.getSublistValue({ sublistId: id, fieldId: f, line }))])));
  const transaction = (id) => id && { id: String(id), ...search.lookupFields({ type: 'transaction', id, columns: ['tranid', 'externalid'] }) };

  const afterSubmit = (ctx) => {
    const rec = ctx.type === ctx.UserEventType.DELETE ? ctx.oldRecord : ctx.newRecord;
    const record = Object.fromEntries(rec.getFields().map((f) => [f, text(rec.getValue(f))]));
    for (const [id, [key, fields]] of Object.entries(LINES)) {
      if (rec.getSublists().includes(id)) record[key] = lines(rec, id, fields);
    }
    record.salesOrder = transaction(rec.getValue('createdfrom')); // the RMA's/fulfilment's order
    const body = JSON.stringify({ eventId: `${rec.type}-${rec.id}-${ctx.type}-${Date.now()}`, eventType: ctx.type,
      recordType: rec.type, id: String(rec.id), lastModifiedDate: new Date().toISOString(), record });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const key = crypto.createSecretKey({ secret: runtime.getCurrentScript().getParameter({ name: 'custscript_gw_secret' }),
      encoding: encode.Encoding.UTF_8 });
    const hmac = crypto.createHmac({ algorithm: crypto.HashAlg.SHA256, key });
    hmac.update({ input: `${timestamp}.${body}`, inputEncoding: encode.Encoding.UTF_8 });
    const signature = `sha256=${hmac.digest({ outputEncoding: encode.Encoding.HEX }).toLowerCase()}`;
    const response = https.post({ url: runtime.getCurrentScript().getParameter({ name: 'custscript_gw_url' }), body,
      headers: { 'Content-Type': 'application/json', 'X-Gateway-Timestamp': timestamp, 'X-Gateway-Signature': signature } });
    // Not 2xx: the gateway's SuiteQL poll picks the change up later; leave a trace for the admin.
    if (response.code >= 300) log.error({ title: 'erp-gateway webhook', details: `${response.code} ${response.body}` });
  };
  return { afterSubmit };
});
