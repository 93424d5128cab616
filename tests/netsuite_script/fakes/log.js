'use strict';
// Fake N/log: log.debug/audit/error/emergency({title, details}) write the script's Execution Log
// (log.audit(options), https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4430384449.html); here
// they are kept for the test to read.
module.exports = (env) => Object.fromEntries(['debug', 'audit', 'error', 'emergency'].map((level) => [level,
  (options, details) => {
    const entry = typeof options === 'object' && options !== null ? options : { title: options, details };
    env.logs.push({ level, title: String(entry.title), details: String(entry.details) });
  }]));
