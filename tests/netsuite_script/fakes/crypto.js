'use strict';
// Fake N/crypto, with node:crypto doing the hashing:
// - crypto.createSecretKey({secret | guid, encoding}) → SecretKey; `secret` is the script id of an
//   API Secret (Setup > Company > API Secrets), not the secret itself
//   (https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4358653390.html);
// - crypto.createHmac({algorithm: crypto.HashAlg.SHA256, key}) → Hmac (section_4358647613.html);
//   Hmac.update({input, inputEncoding}), Hmac.digest({outputEncoding}) → string. NetSuite's HEX
//   digest is upper case, which is why scripts lower-case it for the usual sha256=<hex> form.
const nodeCrypto = require('crypto');

const HashAlg = Object.freeze({ MD5: 'MD5', SHA1: 'SHA1', SHA256: 'SHA256', SHA512: 'SHA512' });
const OUTPUT = { HEX: 'hex', BASE_16: 'hex', BASE_64: 'base64', BASE_64_URL_SAFE: 'base64url' };

module.exports = (env) => ({
  HashAlg,
  createSecretKey(options) {
    const id = options && (options.secret || options.guid);
    if (!id) throw Object.assign(new Error('options.secret or options.guid is required'), { name: 'SSS_MISSING_REQD_ARGUMENT' });
    const value = env.account().secrets[id];
    if (value === undefined) throw Object.assign(new Error(`no API secret ${id} this script may use`), { name: 'INVALID_SECRET_KEY' });
    return { secret: options.secret, guid: options.guid, encoding: options.encoding, value };
  },
  createHmac(options) {
    if (!options || !HashAlg[options.algorithm] || !options.key) {
      throw Object.assign(new Error('options.algorithm (crypto.HashAlg) and options.key are required'), { name: 'SSS_MISSING_REQD_ARGUMENT' });
    }
    const mac = nodeCrypto.createHmac(options.algorithm.toLowerCase(), Buffer.from(options.key.value, 'utf8'));
    return {
      update({ input, inputEncoding }) {
        if (inputEncoding && inputEncoding !== 'UTF_8') throw new Error(`fake Hmac reads UTF_8 input only, not ${inputEncoding}`);
        mac.update(Buffer.from(String(input), 'utf8'));
      },
      digest({ outputEncoding }) {
        const out = mac.digest(OUTPUT[outputEncoding] || 'hex');
        return outputEncoding === 'HEX' || outputEncoding === 'BASE_16' ? out.toUpperCase() : out;
      },
    };
  },
});
