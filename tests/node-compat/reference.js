// The Node reference for hookgate's compatibility suite: runs one hook file under real Node the way
// `hookgate test --config <toml with [hooks.egress.redirect]>` runs it, so the two can be compared.
//
// Usage: node reference.js <hook.js> <payload.json> <redirect.json>
//   redirect.json: { "hooks.slack.com": "http://127.0.0.1:40123", ... }, hookgate's
//   [hooks.egress.redirect] table as JSON.
// Prints the cb result as pretty JSON on stdout and exits 0, or prints
// `hookgate: the hook called back with an error: <Class>: <message>` on stderr and exits 1.
// Exits when the event loop is empty, as node does, so requests the hook left running after cb
// (fire-and-forget) still go out.
//
// Owns: the Node side of the contract (src/hooks/cli.rs default payloads, src/engine/globals/
// invoke.js and errors.js) and the redirect of outbound http/https requests.
// Must not touch: the hook or its packages; it only wraps http/https before they load.
'use strict';

const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');
const Module = require('module');

const [hookArg, payloadArg, redirectArg] = process.argv.slice(2);
if (!hookArg || !payloadArg || !redirectArg) {
  process.stderr.write('usage: node reference.js <hook.js> <payload.json> <redirect.json>\n');
  process.exit(2);
}
const hookFile = path.resolve(hookArg);
const redirect = JSON.parse(fs.readFileSync(redirectArg, 'utf8'));

// --- Egress redirect, as hookgate does it: the stub gets the request with the original path,
// query and Host header, over the stub's own scheme and port.

const originals = {
  'http:': { request: http.request, get: http.get },
  'https:': { request: https.request, get: https.get },
};

function defaultPort(protocol) {
  return protocol === 'https:' ? 443 : 80;
}

// Node's three call shapes, (url[, options][, cb]) with url a string or URL, and (options[, cb]),
// reduced to one options object.
function normalise(protocol, args) {
  let url = null;
  let options = {};
  let cb;
  let i = 0;
  if (typeof args[i] === 'string' || args[i] instanceof URL) url = new URL(String(args[i++]));
  if (args[i] && typeof args[i] === 'object') options = args[i++];
  if (typeof args[i] === 'function') cb = args[i];
  const merged = Object.assign({}, options);
  if (url) {
    merged.protocol = options.protocol || url.protocol;
    merged.hostname = options.hostname || options.host || url.hostname;
    if (options.port === undefined && url.port) merged.port = url.port;
    if (options.path === undefined) merged.path = url.pathname + url.search;
    if (options.auth === undefined && (url.username || url.password)) {
      merged.auth = decodeURIComponent(url.username) + ':' + decodeURIComponent(url.password);
    }
  }
  merged.protocol = merged.protocol || protocol;
  return { options: merged, cb };
}

function hostOf(options) {
  let host = options.hostname || options.host || 'localhost';
  // `host` may carry a port ("example.com:8443"); IPv6 literals come bracketed.
  if (!options.hostname && /^[^\[\]]+:\d+$/.test(host)) host = host.replace(/:\d+$/, '');
  return host.replace(/^\[|\]$/g, '');
}

function redirected(protocol, method, args) {
  const { options, cb } = normalise(protocol, args);
  const host = hostOf(options);
  const base = Object.prototype.hasOwnProperty.call(redirect, host) ? redirect[host] : null;
  if (!base) return originals[protocol][method].apply(null, args);

  const target = new URL(base);
  const out = Object.assign({}, options);
  const port = options.port ? Number(options.port) : defaultPort(options.protocol);
  const headers = Object.assign({}, options.headers);
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'host')) {
    headers.host = port === defaultPort(options.protocol) ? host : host + ':' + port;
  }
  out.headers = headers;
  out.protocol = target.protocol;
  out.hostname = target.hostname;
  delete out.host;
  out.port = target.port || defaultPort(target.protocol);
  out.path = options.path || '/';
  delete out.servername;
  // An https.Agent cannot carry a plain-http request (Node refuses the protocol mismatch); the
  // target protocol's global agent takes it, as hookgate's own client does.
  if (out.agent && out.agent.protocol && out.agent.protocol !== target.protocol) delete out.agent;
  return originals[target.protocol][method].call(null, out, cb);
}

for (const [mod, protocol] of [[http, 'http:'], [https, 'https:']]) {
  mod.request = function request(...args) { return redirected(protocol, 'request', args); };
  mod.get = function get(...args) { return redirected(protocol, 'get', args); };
}

// --- Auth0's Runner ran Node 8 and later 12: no global fetch. Packages written for it bring their
// own (graphql-request's cross-fetch/polyfill installs node-fetch only when `global.fetch` is
// missing), and Node 20's undici fetch would bypass the http module, the redirect, and the Host
// header. hookgate's own fetch global is redirected by hookgate itself, so both sides reach the stub.
for (const name of ['fetch', 'Headers', 'Request', 'Response']) delete globalThis[name];

// --- Auth0's require: `require('axios@0.19.2')` finds the installed axios (hookgate ignores the
// version suffix the same way, see src/engine/program.rs).
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const m = /^((?:@[^/]+\/)?[^/@]+)@[^/]+(\/.*)?$/.exec(request);
  return resolve.call(this, m ? m[1] + (m[2] || '') : request, ...rest);
};

// --- The error classes hooks use as globals (src/engine/globals/errors.js).
function defineError(name, init) {
  const C = class extends Error {
    constructor(message, extra) {
      super(message);
      if (init) init(this, message, extra);
    }
  };
  Object.defineProperty(C, 'name', { value: name });
  Object.defineProperty(C.prototype, 'name', { value: name, writable: true, configurable: true });
  Object.defineProperty(globalThis, name, { value: C, writable: true, configurable: true });
}
defineError('InvalidScopeError');
defineError('InvalidRequestError');
defineError('ServerError');
defineError('PreUserRegistrationError', (self, logMessage, userMessage) => {
  self.userMessage = userMessage === undefined ? undefined : String(userMessage);
});

// --- The Runner's default payloads (src/hooks/cli.rs `default_payload`, `argument_names`).
function defaults(trigger) {
  const connectionContext = {
    requestLanguage: 'en-us',
    connection: { id: 'con_xxxxxxxxxxxxxxxx', name: 'Username-Password-Authentication', tenant: 'my-tenant' },
    webtask: { secrets: {} },
  };
  switch (trigger) {
    case 'credentials-exchange':
      return [['client', 'scope', 'audience', 'context'], {
        client: { id: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', name: 'Test Application', tenant: 'my-tenant', metadata: {} },
        scope: ['read:connections'],
        audience: 'https://my-tenant.auth0.com/api/v2/',
        context: {
          webtask: { secrets: {} },
          body: { grant_type: 'client_credentials', client_id: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', audience: 'https://my-tenant.auth0.com/api/v2/' },
        },
      }];
    case 'pre-user-registration':
      return [['user', 'context'], {
        user: {
          tenant: 'my-tenant', username: 'user1', password: 'xxxxxxx', email: 'user1@foo.com',
          emailVerified: false, phoneNumber: '1-000-000-0000', phoneNumberVerified: false,
          user_metadata: { hobby: 'surfing' }, app_metadata: { plan: 'full' },
        },
        context: connectionContext,
      }];
    case 'post-user-registration':
      return [['user', 'context'], {
        user: {
          id: 'abc', tenant: 'my-tenant', username: 'user1', email: 'user1@foo.com',
          emailVerified: false, phoneNumber: '1-000-000-0000', phoneNumberVerified: false,
          user_metadata: { hobby: 'surfing' }, app_metadata: { plan: 'full' },
        },
        context: connectionContext,
      }];
    case 'post-change-password':
      return [['user', 'context'], {
        user: { id: 'abc', username: 'user1', email: 'user1@foo.com', last_password_reset: '2019-02-27T14:14:29.206Z' },
        context: connectionContext,
      }];
    case 'send-phone-message':
      return [['recipient', 'text', 'context'], {
        recipient: '1-808-555-5555',
        text: 'Here is your one time password: 871068',
        context: {
          factor_type: 'first', message_type: 'sms', action: 'enrollment', language: 'en',
          code: '871068', ip: '127.0.0.1', user_agent: 'Mozilla/5.0',
          client: { client_id: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', name: 'Test Application', client_metadata: {} },
          user: { user_id: 'auth0|5c8a3c7f1b2c3d4e5f6a7b8c', name: 'user1', email: 'user1@foo.com', app_metadata: {}, user_metadata: {} },
          webtask: { secrets: {} },
        },
      }];
    default:
      process.stderr.write(`hookgate: cannot tell the trigger of ${hookArg}: put it in a folder named after its trigger\n`);
      process.exit(2);
  }
}

const trigger = path.basename(path.dirname(hookFile));
const [names, values] = defaults(trigger);
Object.assign(values, JSON.parse(fs.readFileSync(payloadArg, 'utf8')));
// Secrets must be strings, as hookgate hands them over.
const secrets = (values.context && values.context.webtask && values.context.webtask.secrets) || {};
for (const k of Object.keys(secrets)) if (typeof secrets[k] !== 'string') secrets[k] = JSON.stringify(secrets[k]);
const args = names.map((n) => (values[n] === null ? undefined : values[n]));

// The machine's environment is not the hook's: AWS_* or TWILIO_* variables of whoever runs the
// suite must not reach the packages, which read them as credentials.
for (const k of Object.keys(process.env)) delete process.env[k];
// Nor is its home folder: aws-sdk reads ~/.aws/config and ~/.aws/credentials on every call, even
// with explicit credentials, and a developer's region or endpoint there would steer the reference.
process.env.HOME = '/nonexistent';

// --- The cb contract (src/engine/globals/invoke.js): exactly once, a returned Promise counts.
function describe(e) {
  if (typeof e === 'string') return { class: 'string', message: e };
  if (e !== null && typeof e === 'object') {
    let cls = typeof e.name === 'string' && e.name ? e.name : '';
    const ctor = e.constructor && typeof e.constructor.name === 'string' ? e.constructor.name : '';
    if ((!cls || cls === 'Error') && ctor && ctor !== 'Object') cls = ctor;
    let message = e.message !== undefined ? String(e.message) : '';
    if (!(e instanceof Error) && message === '') { try { message = JSON.stringify(e); } catch (x) { message = String(e); } }
    const out = { class: cls || 'Error', message };
    if (e.userMessage !== undefined && e.userMessage !== null) out.user_message = String(e.userMessage);
    return out;
  }
  return { class: typeof e, message: String(e) };
}

let settled = false;
function settle(err, value) {
  if (settled) { process.stderr.write('reference: cb was called more than once; this call is ignored\n'); return; }
  settled = true;
  if (err !== null && err !== undefined) {
    const d = describe(err);
    const user = d.user_message !== undefined ? ` (user message: ${d.user_message})` : '';
    process.stderr.write(`hookgate: the hook called back with an error: ${d.class}: ${d.message}${user}\n`);
    process.exitCode = 1;
    return;
  }
  const json = value === undefined ? 'null' : JSON.stringify(value, null, 2);
  process.stdout.write((json === undefined ? 'null' : json) + '\n');
  process.exitCode = 0;
}

process.on('beforeExit', () => {
  if (!settled) {
    settled = true;
    process.stderr.write('hookgate: the hook ended without calling cb\n');
    process.exitCode = 1;
  }
});

const hook = require(hookFile);
if (typeof hook !== 'function') {
  process.stderr.write(`hookgate: ${hookArg} does not export a function\n`);
  process.exit(1);
}
try {
  const r = hook.apply(undefined, args.concat([settle]));
  if (r !== null && (typeof r === 'object' || typeof r === 'function') && typeof r.then === 'function') {
    r.then((v) => { if (!settled) settle(null, v); }, (e) => {
      if (!settled) settle(e === undefined || e === null ? new Error('the hook\'s promise was rejected without a reason') : e);
    });
  }
} catch (e) {
  if (!settled) settle(e);
}
