'use strict';
// Fake N/runtime: runtime.getCurrentScript() → Script (getParameter({name}), getRemainingUsage());
// runtime.getCurrentUser() → User (getPreference({name}): DATEFORMAT such as "M/D/YYYY" or
// "DD-Mon-YYYY", TIMEZONE as an Olson name, LANGUAGE)
// (runtime.getCurrentUser(), https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4296529105.html).
// A user event script has 1,000 units (Script Type Usage Unit Limits, section_N3351480.html).
module.exports = (env) => ({
  ContextType: Object.freeze({ USER_INTERFACE: 'USERINTERFACE', WEBSERVICES: 'WEBSERVICES', RESTWEBSERVICES: 'RESTWEBSERVICES', CSV_IMPORT: 'CSVIMPORT' }),
  get executionContext() { return env.case().executionContext || 'USERINTERFACE'; },
  get accountId() { return env.account().accountId; },
  getCurrentScript() {
    return {
      id: 'customscript_gw_user_event',
      deploymentId: 'customdeploy_gw_user_event',
      getParameter({ name }) {
        const params = { ...env.account().parameters, ...(env.case().parameters || {}) };
        return name in params ? params[name] : null;
      },
      getRemainingUsage: () => 1000 - env.usage(),
    };
  },
  getCurrentUser() {
    const prefs = { ...env.account().user, ...(env.case().user || {}) };
    return { id: 7, role: 3, getPreference: ({ name }) => (name in prefs ? prefs[name] : null) };
  },
  isFeatureInEffect({ feature }) { return (env.account().features || []).includes(feature); },
});
