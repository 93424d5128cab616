'use strict';
// Fake N/https: https.post({url, body, headers}) sends a request and returns an
// https.ClientResponse {code, body, headers}; a network failure throws (https.post(options),
// https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4567628658.html: 10 units,
// a 5 s connect and 45 s send timeout; https.ClientResponse, section_4567656083.html). Every post is recorded for the test; the answer is the case's.
module.exports = (env) => ({
  post(options) {
    if (!options || !options.url) throw Object.assign(new Error('options.url is required'), { name: 'SSS_MISSING_REQD_ARGUMENT' });
    if (!/^https:\/\//.test(options.url)) throw Object.assign(new Error(`not https: ${options.url}`), { name: 'SSS_INVALID_URL' });
    env.spend(10, 'https.post');
    env.posts.push({ url: options.url, headers: { ...options.headers }, body: options.body });
    const answer = env.response();
    if (answer.throws) throw Object.assign(new Error(answer.throws.message), { name: answer.throws.name });
    return { code: answer.code, body: answer.body || '', headers: answer.headers || {} };
  },
});
