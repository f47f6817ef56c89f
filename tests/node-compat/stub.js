// The services the compatibility hooks call (Slack, Twilio, SNS, FullContact, a CRM, a billing
// API, a GraphQL API), impersonated by one local server that tells them apart by the Host header,
// the way hookgate's [hooks.egress.redirect] and reference.js deliver them.
//
// Owns: the canned answers (shaped like the real services' documented answers, so packages parse
// them as they would in production), the credential checks a real service would make, and the
// recording of every request the hooks sent.
// Must not touch: anything but 127.0.0.1. It lives as long as its stdin: the test that started it
// holds the pipe, so a test that dies cannot leave it behind.
//
// Usage: node stub.js   -> prints {"ready":true,"port":N,"hosts":[...]} on one line.
// GET /__recorded with `Host: stub` answers the requests recorded so far and forgets them.
'use strict';

const http = require('http');
const zlib = require('zlib');
const crypto = require('crypto');

// The credentials the payloads in payloads/ hand the hooks as secrets. A real service refuses a
// request without them; so does the stub, so a credential that never arrives shows in the output.
const CREDENTIALS = {
  billing: 'Bearer bk_live_51HqLyjWDarjtT1zdp7dc',
  fullcontact: 'Bearer fc_2b1d93a7e0c44f6ab5a3c9d1e8f70a42',
  accounts: 'Bearer acc_tok_7f3e9a0c2d5b4e8f',
  crm: 'c6d2f1e0-93b4-4a57-8e21-0f4d9a3b7c65',
  twilioSid: 'AC0123456789abcdef0123456789abcdef',
  twilioToken: 'f2b3c4d5e6f708192a3b4c5d6e7f8091',
  awsKeyId: 'AKIAIOSFODNN7EXAMPLE',
  awsSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
};

let recorded = [];

// Compressed when the client asks for it, as Slack, Twilio and most APIs behind a CDN do: a
// package that sends Accept-Encoding must then gunzip (node-fetch always asks; request with
// `gzip: true`).
function send(res, status, type, body, extraHeaders) {
  const headers = Object.assign({ 'content-type': type }, extraHeaders || {});
  if (/\bgzip\b/.test(res.req.headers['accept-encoding'] || '')) {
    body = zlib.gzipSync(body);
    headers['content-encoding'] = 'gzip';
  }
  res.writeHead(status, headers);
  res.end(body);
}

function json(res, status, value, extraHeaders) {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value), extraHeaders);
}

function form(body) {
  return Object.fromEntries(new URLSearchParams(body));
}

// AWS Signature Version 4, checked the way SNS checks it: a subset SDK that signs wrongly must fail
// here as it would against AWS, not pass because the stub is lenient.
function sigv4Valid(req, body) {
  const auth = req.headers.authorization || '';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return false;
  const [, keyId, date, region, service, signedHeaders, signature] = m;
  if (keyId !== CREDENTIALS.awsKeyId) return false;
  const amzDate = req.headers['x-amz-date'];
  if (!amzDate || !amzDate.startsWith(date)) return false;
  const url = new URL(req.url, 'http://x');
  const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  const query = [...url.searchParams].map(([k, v]) => [enc(k), enc(v)]).sort().map(([k, v]) => k + '=' + v).join('&');
  const names = signedHeaders.split(';');
  const canonicalHeaders = names.map((n) => n + ':' + String(req.headers[n] || '').trim().replace(/\s+/g, ' ') + '\n').join('');
  const hash = (s) => crypto.createHash('sha256').update(s).digest('hex');
  const canonical = [req.method, url.pathname, query, canonicalHeaders, signedHeaders, hash(body)].join('\n');
  const scope = [date, region, service, 'aws4_request'].join('/');
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hash(canonical)].join('\n');
  const hmac = (key, s) => crypto.createHmac('sha256', key).update(s).digest();
  let key = hmac('AWS4' + CREDENTIALS.awsSecret, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, toSign).toString('hex') === signature;
}

// host -> (req, body, res) -> answer. One entry per impersonated service.
const SERVICES = {
  // A partner identity provider's JWKS (the P-256 key of payloads/jwt-*.json), as hooks that
  // verify partner tokens fetch it.
  'partner.example.com': (req, body, res) => {
    if (req.method !== 'GET' || req.url !== '/.well-known/jwks.json') return json(res, 404, { error: 'not_found' });
    json(res, 200, { keys: [{
      kty: 'EC', crv: 'P-256', kid: 'k1', alg: 'ES256', use: 'sig',
      x: 'PKWaID61msRAFg-hb1-ttuoQ1MHJiPavP2qKW0f4SmQ', y: 'ju_9ZoHuSVrGAjGBql0IZY-NE5Hf_jlljNNx4OkipVk',
    }] });
  },

  // Slack incoming webhooks answer a bare `ok` (text/html); a revoked webhook answers 404.
  'hooks.slack.com': (req, body, res) => {
    if (req.method !== 'POST') return send(res, 405, 'text/html', 'invalid_method');
    if (req.url.endsWith('/REVOKED')) return send(res, 404, 'text/html', 'no_service');
    send(res, 200, 'text/html', 'ok');
  },

  // A billing API behind a proxy that gzips every answer, whatever the client asked for.
  'billing.example.com': (req, body, res) => {
    if (req.headers.authorization !== CREDENTIALS.billing) return json(res, 401, { error: 'unauthorized' });
    const m = /^\/v1\/customers\/([^/?]+)\/subscription$/.exec(req.url);
    if (!m) return json(res, 404, { error: 'not_found' });
    const out = zlib.gzipSync(JSON.stringify({ customer: m[1], plan: 'enterprise', seats: 25, status: 'active' }));
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': out.length });
    res.end(out);
  },

  // FullContact Enrich v3: POST /v3/person.enrich, 404 when it knows nobody with that email.
  'api.fullcontact.com': (req, body, res) => {
    if (req.headers.authorization !== CREDENTIALS.fullcontact) return json(res, 401, { status: 401, message: 'Invalid or missing API key' });
    if (req.method !== 'POST' || req.url !== '/v3/person.enrich') return json(res, 404, { status: 404, message: 'Not found' });
    const { email } = JSON.parse(body || '{}');
    if (email !== 'user1@foo.com') return json(res, 404, { status: 404, message: 'Profile not found' });
    json(res, 200, {
      fullName: 'Jane Doe', ageRange: '30-39', location: 'Denver, Colorado, United States',
      title: 'Site Reliability Engineer', organization: 'Foo Inc.', twitter: 'https://twitter.com/janedoe',
      linkedin: 'https://www.linkedin.com/in/janedoe', updated: '2019-03-01',
    }, { 'x-rate-limit-limit': '600', 'x-rate-limit-remaining': '599' });
  },

  // The company's own GraphQL API: the account an invited email belongs to.
  'accounts.example.com': (req, body, res) => {
    if (req.headers.authorization !== CREDENTIALS.accounts) return json(res, 401, { errors: [{ message: 'unauthenticated' }] });
    if (req.method !== 'POST' || req.url !== '/graphql') return json(res, 404, { errors: [{ message: 'not found' }] });
    const { query, variables } = JSON.parse(body || '{}');
    if (!/invitation\s*\(\s*email:\s*\$email\s*\)/.test(query || '')) return json(res, 400, { errors: [{ message: 'Cannot query field' }] });
    const email = variables && variables.email;
    const invitation = email === 'user1@foo.com'
      ? { account: { id: 'acct_42', name: 'Foo Inc.', plan: 'team' }, role: 'admin', blocked: false }
      : email === 'spammer@foo.com'
        ? { account: null, role: null, blocked: true }
        : null;
    json(res, 200, { data: { invitation } });
  },

  // A CRM's REST API: 201 Created with the new contact's URL in Location.
  'crm.example.com': (req, body, res) => {
    if (req.headers['x-api-key'] !== CREDENTIALS.crm) return json(res, 401, { message: 'bad api key' });
    if (req.method !== 'POST' || req.url !== '/api/v1/contacts') return json(res, 404, { message: 'not found' });
    const contact = JSON.parse(body || '{}');
    json(res, 201, Object.assign({ id: 'ct_8f14e45f' }, contact), {
      location: 'https://crm.example.com/api/v1/contacts/ct_8f14e45f',
    });
  },

  // Twilio's Messages resource; +15005550001 is Twilio's documented "invalid number" test number.
  'api.twilio.com': (req, body, res) => {
    const basic = 'Basic ' + Buffer.from(CREDENTIALS.twilioSid + ':' + CREDENTIALS.twilioToken).toString('base64');
    if (req.headers.authorization !== basic) {
      return json(res, 401, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 });
    }
    const path = `/2010-04-01/Accounts/${CREDENTIALS.twilioSid}/Messages.json`;
    if (req.method !== 'POST' || req.url !== path) return json(res, 404, { code: 20404, message: 'The requested resource was not found', status: 404 });
    const f = form(body);
    if (f.To === '+15005550001') {
      return json(res, 400, { code: 21211, message: `The 'To' number ${f.To} is not a valid phone number.`, more_info: 'https://www.twilio.com/docs/errors/21211', status: 400 });
    }
    const sid = 'SM' + crypto.createHash('md5').update(f.To + f.Body).digest('hex');
    json(res, 201, {
      account_sid: CREDENTIALS.twilioSid, api_version: '2010-04-01', body: f.Body,
      date_created: 'Thu, 30 Jul 2015 20:12:31 +0000', date_sent: null, date_updated: 'Thu, 30 Jul 2015 20:12:33 +0000',
      direction: 'outbound-api', error_code: null, error_message: null, from: f.From, messaging_service_sid: null,
      num_media: '0', num_segments: '1', price: null, price_unit: null, sid, status: 'queued',
      subresource_uris: { media: `/2010-04-01/Accounts/${CREDENTIALS.twilioSid}/Messages/${sid}/Media.json` },
      to: f.To, uri: `/2010-04-01/Accounts/${CREDENTIALS.twilioSid}/Messages/${sid}.json`,
    });
  },

  // SNS in a region having a bad day: `Message=throttle` gets 400 Throttling, anything else 500
  // InternalFailure, every time (aws-sdk retries both).
  'sns.eu-west-3.amazonaws.com': (req, body, res) => {
    const f = form(body);
    const [status, code, message] = f.Message === 'throttle'
      ? [400, 'Throttling', 'Rate exceeded']
      : [500, 'InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.'];
    send(res, status, 'text/xml', `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>${status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>5f1d2c3b-4a59-5e6f-8a7b-9c0d1e2f3a4b</RequestId></ErrorResponse>`);
  },

  // Amazon SNS Query API (form-encoded POST to /), answering XML.
  'sns.us-east-1.amazonaws.com': (req, body, res) => {
    const xmlError = (status, code, message) => send(res, status, 'text/xml',
      `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>9b7c1f0e-0d7a-5c3e-9f1b-2a6e4d8c0b13</RequestId></ErrorResponse>`);
    if (!sigv4Valid(req, body)) {
      return xmlError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    const f = form(body);
    if (f.Action !== 'Publish') return xmlError(400, 'InvalidAction', `The action ${f.Action} is not valid for this endpoint.`);
    if (!f.PhoneNumber || !f.Message) return xmlError(400, 'InvalidParameter', 'Invalid parameter: PhoneNumber and Message are required');
    const id = crypto.createHash('md5').update(f.PhoneNumber + f.Message).digest('hex');
    const messageId = `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20)}`;
    send(res, 200, 'text/xml', `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult>
    <MessageId>${messageId}</MessageId>
  </PublishResult>
  <ResponseMetadata>
    <RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId>
  </ResponseMetadata>
</PublishResponse>
`);
  },
};

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const host = String(req.headers.host || '').replace(/:\d+$/, '');
    if (host === 'stub' && req.url === '/__recorded') {
      const out = recorded;
      recorded = [];
      return json(res, 200, out);
    }
    recorded.push({
      method: req.method,
      host: req.headers.host || null,
      path: req.url,
      content_type: req.headers['content-type'] || null,
      authorization: req.headers.authorization || null,
      // A header a client adds on its own shows here: Node's http sends no Accept.
      accept: req.headers.accept || null,
      // Which headers arrived at all (names, sorted): nothing Node would not send.
      header_names: Object.keys(req.headers).sort(),
      body,
    });
    const service = SERVICES[host];
    if (!service) return send(res, 502, 'text/plain', `stub: no service impersonated for Host ${host}`);
    service(req, body, res);
  });
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ ready: true, port, hosts: Object.keys(SERVICES) }) + '\n');
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
