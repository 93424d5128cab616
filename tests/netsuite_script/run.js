'use strict';
// Runs the user-event script's afterSubmit once per case against the fake N/ modules and prints
// what it did: `node run.js <script.js> < plan.json` → [{name, posts, logs, usage}] on stdout.
// plan.json: {account, cases: [{name, context, record, oldRecord?, now, user?, dateZone?,
// parameters?, response?}]} (account.json and cases/*.json, put together by the pytest test).
// The clock is fixed at each case's `now`, so the posts are byte-for-byte reproducible. Run it
// with TZ=America/Los_Angeles: NetSuite runs server scripts in Pacific time.
const fs = require('fs');
const zones = require('./zones');
const { load } = require('./loader');
const makeRecord = require('./fakes/record');
const makeFormat = require('./fakes/format');

const RealDate = zones.RealDate;
let now = 0;
class FixedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(now);
    else super(...args);
  }

  static now() { return now; }
}

// context.UserEventType (SuiteScript 2.x User Event Script Entry Points and API,
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4490073437.html)
const UserEventType = Object.freeze({
  APPROVE: 'approve', CANCEL: 'cancel', COPY: 'copy', CREATE: 'create', DELETE: 'delete', DROPSHIP: 'dropship',
  EDIT: 'edit', MARKCOMPLETE: 'markcomplete', ORDERITEMS: 'orderitems', PACK: 'pack', REJECT: 'reject', SHIP: 'ship',
  SPECIALORDER: 'specialorder', TRANSFORM: 'transform', XEDIT: 'xedit',
});

function accountOf(data) {
  return {
    ...data,
    recordOf: (type, id) => (data.records || {})[`${type}:${id}`],
    lookup: (type, id) => (type === 'transaction' ? (data.transactions || {})[id] : undefined),
  };
}

function main() {
  const scriptPath = process.argv[2];
  const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
  const account = accountOf(plan.account);
  let current = null;
  let used = 0;
  const env = {
    posts: [],
    logs: [],
    account: () => account,
    case: () => current,
    prefs: () => ({ ...account.user, ...(current.user || {}) }),
    // where NetSuite puts a date field's midnight: the server's zone (Pacific) or the user's
    dateZone: () => (current.dateZone === 'user' ? env.prefs().TIMEZONE : 'America/Los_Angeles'),
    usage: () => used,
    spend(units, what) {
      used += units;
      if (used > 1000) throw Object.assign(new Error(`${what}: over 1,000 units`), { name: 'SSS_USAGE_LIMIT_EXCEEDED' });
    },
    response: () => current.response || { code: 202, body: '{"accepted":true}' },
  };
  const format = makeFormat(env);
  // what getText shows for a date field: the same rendering as format.format
  env.formatDate = (d) => format.formatDate(d, env.prefs().DATEFORMAT, env.prefs().LANGUAGE, env.dateZone());
  const record = makeRecord(env);
  const modules = {
    'N/https': require('./fakes/https')(env),
    'N/crypto': require('./fakes/crypto')(env),
    'N/encode': require('./fakes/encode')(env),
    'N/runtime': require('./fakes/runtime')(env),
    'N/search': require('./fakes/search')(env),
    'N/query': require('./fakes/query')(env),
    'N/log': require('./fakes/log')(env),
    'N/record': record,
    'N/format': format,
  };
  global.Date = FixedDate;
  const script = load(scriptPath, modules);
  const results = [];
  for (const c of plan.cases) {
    current = c;
    used = 0;
    env.posts.length = 0;
    env.logs.length = 0;
    now = RealDate.parse(c.now);
    const newRecord = new record.FakeRecord(c.record, env);
    const oldRecord = new record.FakeRecord(c.oldRecord || c.record, env);
    let thrown = null;
    try {
      script.afterSubmit({ type: c.context, newRecord, oldRecord, UserEventType });
    } catch (e) {
      thrown = `${e.name}: ${e.message}`;
    }
    results.push({ name: c.name, posts: env.posts.slice(), logs: env.logs.slice(), usage: used, thrown });
  }
  process.stdout.write(JSON.stringify(results));
}

main();
