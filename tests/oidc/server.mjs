#!/usr/bin/env node
// A real OAuth 2.0 / OIDC server (node-oidc-provider) for hookgate's end-to-end
// tests and demo. It issues RS256 JWT access tokens through the
// client_credentials grant for the resource (Auth0 "audience")
// https://api.example.com/.
//
//   node tests/oidc/server.mjs [--port N] [--host 127.0.0.1] [--exit-with-stdin]
//
// --port 0 (the default) picks an ephemeral port. When ready, exactly one JSON
// line is printed on stdout:
//   {"ready":true,"port":<port>,"issuer":"http://127.0.0.1:<port>"}
// Everything else (including oidc-provider's own notices) goes to stderr.
// --exit-with-stdin makes the server exit when its stdin reaches EOF, so a
// test harness that dies without cleaning up does not leave it running.
//
// Clients, audience and scopes live in clients.json beside this file.
// Token endpoint: POST /token (the provider's default path).

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

// Keep stdout for the ready line only: oidc-provider prints NOTICEs with
// console.info, which would otherwise land on stdout.
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;
console.warn = toStderr;

function usage(message) {
  if (message) console.error(`server.mjs: ${message}`);
  console.error('usage: node server.mjs [--port N] [--host ADDR] [--exit-with-stdin]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', exitWithStdin: false };
  for (let i = 0; i < argv.length; i += 1) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const takeValue = () => {
      if (value !== undefined) return value;
      i += 1;
      if (i >= argv.length) usage(`${arg} needs a value`);
      return argv[i];
    };
    switch (arg) {
      case '--port': {
        const raw = takeValue();
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) usage(`invalid port: ${raw}`);
        opts.port = port;
        break;
      }
      case '--host':
        opts.host = takeValue();
        break;
      case '--exit-with-stdin':
        opts.exitWithStdin = true;
        break;
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument: ${arg}`);
    }
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const config = JSON.parse(readFileSync(new URL('./clients.json', import.meta.url), 'utf8'));
const AUDIENCE = config.audience;
const API_SCOPES = config.scopes;
const TTL = config.access_token_ttl;
// Clients for which the server does what node-oidc-provider does by default: a request
// without `resource` gets no resource server, hence an opaque access token.
const NO_DEFAULT_RESOURCE = new Set(config.no_default_resource ?? []);

// The Provider is imported after console is redirected (static imports would
// be evaluated first).
const { default: Provider, errors } = await import('oidc-provider');

// RS256 signing key, generated per process. kid = RFC 7638 JWK thumbprint.
function generateSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprintInput = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  const kid = createHash('sha256').update(thumbprintInput).digest('base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function issuerHost(host) {
  // Wildcard listens are still reached (and named) as 127.0.0.1.
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

const server = createServer();
server.keepAliveTimeout = 65_000;

server.on('error', (err) => {
  console.error(`server.mjs: ${err.message}`);
  process.exit(1);
});

await new Promise((resolve) => { server.listen(opts.port, opts.host, resolve); });
const { port } = server.address();
const issuer = `http://${issuerHost(opts.host)}:${port}`;

const provider = new Provider(issuer, {
  clients: config.clients.map((c) => ({ ...c })),
  jwks: { keys: [generateSigningKey()] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  // API scopes must be known to the provider so clients may list them in
  // their `scope` metadata (which is then an allow-list).
  scopes: ['openid', 'offline_access', ...API_SCOPES],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter: act as if the Auth0-style audience was sent,
      // so the client still gets a JWT access token.
      defaultResource: async (_ctx, client, oneOf) => (
        NO_DEFAULT_RESOURCE.has(client.clientId) ? oneOf : AUDIENCE),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== AUDIENCE) {
          throw new errors.InvalidTarget(`unknown resource: ${resourceIndicator}`);
        }
        return {
          scope: API_SCOPES.join(' '),
          audience: AUDIENCE,
          accessTokenTTL: TTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  ttl: {
    AccessToken: TTL,
    ClientCredentials: TTL,
  },
});

// Honour X-Forwarded-* when hookgate (or anything else) proxies to us.
provider.proxy = true;

provider.on('server_error', (ctx, err) => {
  console.error(`server_error ${ctx.method} ${ctx.path}:`, err);
});

server.on('request', provider.callback());

let closing = false;
function shutdown(reason) {
  if (closing) return;
  closing = true;
  console.error(`oidc test server: ${reason}, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (opts.exitWithStdin) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

console.error(`oidc test server: issuer ${issuer}, token endpoint ${issuer}/token, audience ${AUDIENCE}`);
process.stdout.write(`${JSON.stringify({ ready: true, port, issuer })}\n`);
