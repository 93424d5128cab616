'use strict';
// Fake N/format: format.format({value, type}) turns a raw value into the string the user sees.
// For a DATE it is the date in the user's Date Format preference (DATEFORMAT, e.g. "M/D/YYYY",
// "D.M.YYYY", "DD-Mon-YYYY", "DD MONTH, YYYY"; month names in the user's language); server scripts
// work in a fixed zone (format.format(options),
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4388843892.html:
// "For server scripts, the string returned is based on … the Pacific Time Zone"). The fake uses
// the same zone the fake record used to make the Date (env.dateZone), as NetSuite's own
// getValue/format pair agree with each other. An unformattable value is returned unchanged.
const { dateIn } = require('../zones');

const Type = Object.freeze({ DATE: 'date', DATETIME: 'datetime', DATETIMETZ: 'datetimetz', CURRENCY: 'currency',
  FLOAT: 'float', INTEGER: 'integer', TEXT: 'text' });

function formatDate(date, pattern, language, zone) {
  const { y, m, d } = dateIn(zone, date);
  const locale = String(language || 'en_US').replace('_', '-');
  const name = (style) => new Intl.DateTimeFormat(locale, { month: style, timeZone: 'UTC' }).format(new Date(Date.UTC(2001, m - 1, 15)));
  const tokens = { YYYY: String(y), MONTH: name('long'), Mon: name('short'), MM: String(m).padStart(2, '0'), M: String(m),
    DD: String(d).padStart(2, '0'), D: String(d) };
  return pattern.replace(/YYYY|MONTH|Mon|MM|M|DD|D/g, (t) => tokens[t]);
}

module.exports = (env) => ({
  Type,
  formatDate,
  format(options) {
    const { value, type } = options || {};
    if (Object.prototype.toString.call(value) !== '[object Date]') return value;
    if (type !== Type.DATE) throw new Error(`fake format.format knows DATE only, not ${type}`);
    const prefs = env.prefs();
    return formatDate(value, prefs.DATEFORMAT, prefs.LANGUAGE, env.dateZone());
  },
});
