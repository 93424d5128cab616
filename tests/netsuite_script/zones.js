'use strict';
// Calendar dates and wall clocks in an IANA zone, with Node's ICU (Intl): what the fakes need to
// hand out Date objects the way NetSuite builds them for date fields.

const RealDate = Date;

function wall(zone, t) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new RealDate(t));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return { y: get('year'), m: get('month'), d: get('day'), h: get('hour'), mi: get('minute'), s: get('second') };
}

// how far the zone's wall clock is ahead of UTC at instant t, in ms
function offset(zone, t) {
  const w = wall(zone, t);
  return RealDate.UTC(w.y, w.m - 1, w.d, w.h, w.mi, w.s) - (t - (t % 1000));
}

// the instant of midnight starting the day "YYYY-MM-DD" in zone
function midnight(day, zone) {
  const [y, m, d] = day.split('-').map(Number);
  const guess = RealDate.UTC(y, m - 1, d);
  let t = guess - offset(zone, guess);
  t = guess - offset(zone, t); // once more across a DST change
  return new RealDate(t);
}

// the calendar date (y, m, d) of an instant in zone
function dateIn(zone, date) {
  const w = wall(zone, date.getTime());
  return { y: w.y, m: w.m, d: w.d };
}

module.exports = { RealDate, midnight, dateIn };
