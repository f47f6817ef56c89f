#!/usr/bin/env node
// Helpers of benches/compare.py, on the same `jose` as the Node.js peer.
//
//   node jwt-tool.mjs jwk KEY.pem ALG     -> {"kid":..., "jwks":{"keys":[public JWK]}}
//   node jwt-tool.mjs verify < {"token":..., "jwks":{...}}
//                                         -> {"header":..., "payload":...}; exit 1 if the signature
//                                            does not verify against the JWKS
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, createLocalJWKSet, jwtVerify } from 'jose';

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'jwk') {
  const [file, alg] = args;
  const jwk = createPublicKey(readFileSync(file, 'utf8')).export({ format: 'jwk' });
  const kid = await calculateJwkThumbprint(jwk);
  process.stdout.write(JSON.stringify({ kid, jwks: { keys: [{ ...jwk, kid, alg, use: 'sig' }] } }));
} else if (cmd === 'verify') {
  const { token, jwks } = JSON.parse(readFileSync(0, 'utf8'));
  try {
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { clockTolerance: 60 });
    process.stdout.write(JSON.stringify({ header: protectedHeader, payload }));
  } catch (e) {
    process.stderr.write(`the token does not verify: ${e.code || ''} ${e.message}\n`);
    process.exit(1);
  }
} else {
  process.stderr.write('usage: jwt-tool.mjs jwk KEY.pem ALG | verify < {"token","jwks"}\n');
  process.exit(2);
}
