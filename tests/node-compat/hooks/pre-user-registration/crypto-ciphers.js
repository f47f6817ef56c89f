// Compatibility hook (Node's crypto): seals the new user's phone number with AES-256-GCM for the
// CRM (a key and IV from secrets, so the bytes are fixed), derives a per-tenant key with PBKDF2,
// and checks the published vectors (NIST GCM test case 4, SP 800-38A CBC, RFC 6070 PBKDF2) plus
// the errors Node gives for a wrong key length, bad padding and a forged tag.
module.exports = function (user, context, cb) {
  const crypto = require('crypto');
  const secrets = context.webtask.secrets;
  const hex = (s) => Buffer.from(s, 'hex');
  const failure = (f) => {
    try { f(); return 'no error'; } catch (err) { return [err.name, err.code || null, err.message].join(' | '); }
  };
  const out = {};

  // The phone number, sealed: the CRM stores iv, tag and ciphertext.
  const key = crypto.pbkdf2Sync(secrets.CRM_PASSPHRASE, 'crm:' + context.connection.tenant, 1000, 32, 'sha256');
  const iv = hex(secrets.CRM_IV);
  const seal = crypto.createCipheriv('aes-256-gcm', key, iv);
  seal.setAAD(Buffer.from(user.email));
  const sealed = seal.update(user.phoneNumber.slice(0, 5), 'utf8', 'base64') + seal.update(user.phoneNumber.slice(5), 'utf8', 'base64') + seal.final('base64');
  const tag = seal.getAuthTag();
  out.crm_key = key.toString('hex');
  out.crm_phone = sealed;
  out.crm_tag = tag.toString('base64');
  const open = crypto.createDecipheriv('aes-256-gcm', key, iv);
  open.setAAD(Buffer.from(user.email));
  open.setAuthTag(tag);
  out.crm_phone_back = open.update(sealed, 'base64', 'utf8') + open.final('utf8');

  // NIST GCM test case 4 (AES-128, 60-byte plaintext, 20-byte AAD).
  const gcm = crypto.createCipheriv('aes-128-gcm', hex('feffe9928665731c6d6a8f9467308308'), hex('cafebabefacedbaddecaf888'));
  gcm.setAAD(hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'));
  const gcmCt = Buffer.concat([gcm.update(hex('d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39')), gcm.final()]);
  out.gcm_vector = [gcmCt.toString('hex'), gcm.getAuthTag().toString('hex')];
  const forged = crypto.createDecipheriv('aes-128-gcm', hex('feffe9928665731c6d6a8f9467308308'), hex('cafebabefacedbaddecaf888'));
  forged.setAuthTag(Buffer.alloc(16));
  forged.update(gcmCt);
  out.gcm_forged = failure(() => forged.final());

  // SP 800-38A F.2.1 (AES-128-CBC, no padding), then a padded AES-256-CBC round trip fed in odd pieces.
  const cbc = crypto.createCipheriv('aes-128-cbc', hex('2b7e151628aed2a6abf7158809cf4f3c'), hex('000102030405060708090a0b0c0d0e0f'));
  cbc.setAutoPadding(false);
  out.cbc_vector = cbc.update(hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51'), null, 'hex') + cbc.final('hex');
  const k256 = hex('603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4');
  const iv16 = hex('000102030405060708090a0b0c0d0e0f');
  const enc = crypto.createCipheriv('aes-256-cbc', k256, iv16);
  const ct = Buffer.concat([enc.update('The quick brown '), enc.update('fox jumps over the lazy dog'), enc.final()]);
  out.cbc_padded = ct.toString('hex');
  const dec = crypto.createDecipheriv('aes-256-cbc', k256, iv16);
  out.cbc_back = dec.update(ct.subarray(0, 7), null, 'utf8') + dec.update(ct.subarray(7, 33), null, 'utf8') + dec.update(ct.subarray(33), null, 'utf8') + dec.final('utf8');
  const tamperedCt = Buffer.from(ct);
  tamperedCt[tamperedCt.length - 1] ^= 1;
  out.cbc_bad_padding = failure(() => { const d = crypto.createDecipheriv('aes-256-cbc', k256, iv16); d.update(tamperedCt); d.final(); });
  out.ctr = crypto.createCipheriv('aes-128-ctr', hex('2b7e151628aed2a6abf7158809cf4f3c'), hex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')).update(hex('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51')).toString('hex');
  out.bad_key_length = failure(() => crypto.createCipheriv('aes-256-cbc', Buffer.alloc(16), iv16));
  out.bad_iv = failure(() => crypto.createCipheriv('aes-128-cbc', Buffer.alloc(16), Buffer.alloc(8)));

  // RFC 6070 PBKDF2-HMAC-SHA1 vectors, and sha512.
  out.pbkdf2 = [
    crypto.pbkdf2Sync('password', 'salt', 1, 20, 'sha1').toString('hex'),
    crypto.pbkdf2Sync('password', 'salt', 4096, 20, 'sha1').toString('hex'),
    crypto.pbkdf2Sync('passwordPASSWORDpassword', 'saltSALTsaltSALTsaltSALTsaltSALTsalt', 4096, 25, 'sha1').toString('hex'),
    crypto.pbkdf2Sync(Buffer.from('pass\0word'), Buffer.from('sa\0lt'), 4096, 16, 'sha512').toString('hex'),
  ];
  out.pbkdf2_no_digest = failure(() => crypto.pbkdf2Sync('p', 's', 1, 8));

  out.timing_safe_equal = [
    crypto.timingSafeEqual(Buffer.from(secrets.CRM_IV, 'hex'), iv),
    crypto.timingSafeEqual(Buffer.from('abc'), Buffer.from('abd')),
    failure(() => crypto.timingSafeEqual(Buffer.from('a'), Buffer.from('ab'))),
  ];

  crypto.pbkdf2('password', 'salt', 2, 32, 'sha256', function (err, derived) {
    out.pbkdf2_async = err ? String(err) : derived.toString('hex');
    cb(null, { user: { app_metadata: out } });
  });
};
