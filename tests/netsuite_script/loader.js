'use strict';
// A tiny AMD loader: runs a SuiteScript 2.x file's define(['N/…'], factory) with our fakes in
// place of the N/ modules. An entry point script is one define call whose callback gets the
// modules in the order listed and returns its entry points ("SuiteScript 2.x Anatomy of a
// Script", https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1510274310.html;
// define(): section_4424424173.html). A module the script asks for and we have no fake of is an
// error, not undefined.
const fs = require('fs');

function load(path, modules) {
  const source = fs.readFileSync(path, 'utf8');
  let exported;
  const define = (deps, factory) => {
    if (typeof deps === 'function') [deps, factory] = [[], deps];
    const args = deps.map((name) => {
      if (!(name in modules)) throw new Error(`${path} asks for ${name}: no fake of it in tests/netsuite_script/fakes`);
      return modules[name];
    });
    exported = factory(...args);
  };
  // SuiteScript also has a global log (N/log without a define dependency)
  new Function('define', 'log', source)(define, modules['N/log']); // eslint-disable-line no-new-func
  if (!exported) throw new Error(`${path} did not call define`);
  return exported;
}

module.exports = { load };
