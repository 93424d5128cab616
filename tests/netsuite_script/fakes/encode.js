'use strict';
// Fake N/encode: the encode.Encoding enum (UTF_8, BASE_16, BASE_32, BASE_64, BASE_64_URL_SAFE,
// HEX; https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_4369865177.html).
const Encoding = Object.freeze({ UTF_8: 'UTF_8', BASE_16: 'BASE_16', BASE_32: 'BASE_32', BASE_64: 'BASE_64',
  BASE_64_URL_SAFE: 'BASE_64_URL_SAFE', HEX: 'HEX' });
module.exports = () => ({ Encoding });
