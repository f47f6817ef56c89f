// The nginx + njs peer of benches/compare.py: hookgate's credentials-exchange job as a user would
// write it on Debian's nginx with libnginx-mod-http-js (njs 0.7.9, its WebCrypto).
//
// POST /oauth/token (js_content exchange.token), a client_credentials request (form or JSON body):
//   1. forwarded as is to the upstream's /token through an internal proxy_pass location
//      (r.subrequest; keep-alive connections from the `upstream` block);
//   2. the upstream's access token is verified against its JWKS, fetched through another internal
//      location that nginx caches (proxy_cache: fetched once, then served from the cache) — njs has
//      no state shared across requests before 0.8, so the public key is imported per request
//      (SPKI DER built from the JWK: njs 0.7.9 cannot import JWK);
//   3. the hook (hook.js: the same source as hookgate's hook file, wrapped by compare.py) is
//      called with Auth0's arguments;
//   4. namespaced claims are added, the scope replaced, registered claims kept, and the token
//      re-signed with crypto.subtle.sign (ES256 or RS256; key, kid and alg from the js_preload_object
//      `bench`, written by compare.py);
//   5. the upstream's JSON answer goes back with the new access_token.
// Other grants and non-200 answers go back as the upstream gave them.
import hook from 'hook.js';

var REGISTERED = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'azp', 'client_id'];
var SECRET_PARAMS = ['client_secret', 'client_assertion'];
var LEEWAY = 60;

var ALGS = {
    RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    ES256: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' },
};

function b64urlJson(s) {
    return JSON.parse(Buffer.from(s, 'base64url').toString());
}

function b64url(s) {
    return Buffer.from(s).toString('base64url');
}

// --- DER, just enough for an RSA SubjectPublicKeyInfo -------------------------------------------
function derLength(n) {
    if (n < 0x80) { return Buffer.from([n]); }
    var bytes = [];
    while (n > 0) { bytes.unshift(n & 0xff); n = n >> 8; }
    return Buffer.concat([Buffer.from([0x80 | bytes.length]), Buffer.from(bytes)]);
}

function der(tag, content) {
    return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

function derUint(bytes) {
    var b = bytes;
    if (b[0] & 0x80) { b = Buffer.concat([Buffer.from([0]), b]); }
    return der(0x02, b);
}

var RSA_ALG_ID = Buffer.from('300d06092a864886f70d0101010500', 'hex');
var EC_P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');

function spki(jwk) {
    if (jwk.kty === 'RSA') {
        var rsaKey = der(0x30, Buffer.concat([derUint(Buffer.from(jwk.n, 'base64url')),
                                              derUint(Buffer.from(jwk.e, 'base64url'))]));
        var bits = der(0x03, Buffer.concat([Buffer.from([0]), rsaKey]));
        return der(0x30, Buffer.concat([RSA_ALG_ID, bits]));
    }
    if (jwk.kty === 'EC' && jwk.crv === 'P-256') {
        return Buffer.concat([EC_P256_SPKI_PREFIX, Buffer.from(jwk.x, 'base64url'),
                              Buffer.from(jwk.y, 'base64url')]);
    }
    throw new Error('unsupported upstream key type ' + jwk.kty);
}

// --- request helpers ------------------------------------------------------------------------------
function parseBody(r) {
    var text = r.requestText || '';
    var ct = r.headersIn['Content-Type'] || '';
    var out = {};
    if (ct.indexOf('application/json') === 0) {
        var v = JSON.parse(text);
        Object.keys(v).forEach(function (k) {
            out[k] = typeof v[k] === 'string' ? v[k] : JSON.stringify(v[k]);
        });
        return out;
    }
    text.split('&').forEach(function (pair) {
        if (!pair) { return; }
        var i = pair.indexOf('=');
        var k = i < 0 ? pair : pair.slice(0, i);
        var val = i < 0 ? '' : pair.slice(i + 1);
        out[decodeURIComponent(k.replace(/\+/g, ' '))] = decodeURIComponent(val.replace(/\+/g, ' '));
    });
    return out;
}

function basicClientId(r) {
    var m = /^Basic\s+(.+)$/i.exec(r.headersIn.Authorization || '');
    if (!m) { return undefined; }
    var decoded = Buffer.from(m[1], 'base64').toString();
    var i = decoded.indexOf(':');
    return i < 0 ? undefined : decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
}

function isNamespaced(k) {
    var m = /^https?:\/\/([^\/:?#]+)/i.exec(k);
    if (!m) { return false; }
    var host = m[1].toLowerCase();
    return !['auth0.com', 'webtask.io', 'webtask.run'].some(function (d) {
        return host === d || host.endsWith('.' + d);
    });
}

function relay(r, up) {
    var ct = up.headersOut['Content-Type'];
    if (ct) { r.headersOut['Content-Type'] = ct; }
    var cc = up.headersOut['Cache-Control'];
    if (cc) { r.headersOut['Cache-Control'] = cc; }
    r.return(up.status, up.responseText);
}

function oauthError(r, status, error, description) {
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(status, JSON.stringify({ error: error, error_description: description }));
}

function runHook(client, scope, audience, context) {
    return new Promise(function (resolve, reject) {
        hook(client, scope, audience, context, function (err, result) {
            if (err) { reject(err); } else { resolve(result); }
        });
    });
}

async function verifyUpstream(r, token) {
    var parts = token.split('.');
    if (parts.length !== 3) { throw new Error('the token is not a JWS'); }
    var header = b64urlJson(parts[0]);
    var jwksReply = await r.subrequest('/_bench_upstream_jwks');
    if (jwksReply.status !== 200) { throw new Error('JWKS answered ' + jwksReply.status); }
    var keys = JSON.parse(jwksReply.responseText).keys || [];
    var jwk = keys.find(function (k) { return k.kid === header.kid; });
    if (!jwk && !header.kid && keys.length === 1) { jwk = keys[0]; }
    if (!jwk) { throw new Error('no key with kid ' + header.kid); }
    var alg = ALGS[header.alg];
    if (!alg || (jwk.alg && jwk.alg !== header.alg)) { throw new Error('unexpected alg ' + header.alg); }
    var pub = await crypto.subtle.importKey('spki', spki(jwk), alg, false, ['verify']);
    var ok = await crypto.subtle.verify(alg, pub, Buffer.from(parts[2], 'base64url'),
                                        parts[0] + '.' + parts[1]);
    if (!ok) { throw new Error('bad signature'); }
    var claims = b64urlJson(parts[1]);
    var now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp === 'number' && claims.exp + LEEWAY < now) { throw new Error('expired'); }
    if (typeof claims.nbf === 'number' && claims.nbf > now + LEEWAY) { throw new Error('not yet valid'); }
    return { header: header, claims: claims };
}

async function sign(typ, claims) {
    var alg = ALGS[bench.alg];
    var header = { alg: bench.alg, kid: bench.kid };
    if (typ) { header.typ = typ; }
    var input = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims));
    var key = await crypto.subtle.importKey('pkcs8', Buffer.from(bench.pkcs8, 'base64'), alg, false, ['sign']);
    var sig = await crypto.subtle.sign(alg, key, input);
    return input + '.' + Buffer.from(sig).toString('base64url');
}

async function token(r) {
    try {
        var params = parseBody(r);
        var up = await r.subrequest('/_bench_upstream_token', { method: 'POST', body: r.requestText });
        if (params.grant_type !== 'client_credentials' || up.status !== 200) { return relay(r, up); }
        var answer = JSON.parse(up.responseText);
        var verified;
        try {
            verified = await verifyUpstream(r, answer.access_token);
        } catch (e) {
            r.error('refusing the identity server\'s token: ' + e.message);
            return oauthError(r, 502, 'server_error', 'the identity server\'s token could not be verified');
        }
        var claims = verified.claims;
        var fromText = function (s) {
            return typeof s === 'string' ? s.split(' ').filter(function (x) { return x; }) : undefined;
        };
        var granted = fromText(claims.scope) || (Array.isArray(claims.scp) ? claims.scp : undefined)
            || fromText(answer.scope);
        var audience = Array.isArray(claims.aud) ? claims.aud[0]
            : (claims.aud !== undefined ? claims.aud : (params.audience || params.resource));
        var clientId = basicClientId(r) || params.client_id || '';
        var client = { id: clientId, name: clientId, tenant: bench.tenant,
                       metadata: bench.clients[clientId] || {} };
        var hookBody = Object.assign({}, params);
        SECRET_PARAMS.forEach(function (s) { delete hookBody[s]; });

        var result;
        try {
            result = await runHook(client, granted, audience, { body: hookBody });
        } catch (e) {
            return oauthError(r, 500, 'server_error', 'hook failed: ' + e.message);
        }
        var scope = granted;
        var minted = Object.assign({}, claims);
        Object.keys(result || {}).forEach(function (k) {
            if (k === 'scope') {
                scope = Array.isArray(result.scope) ? result.scope.map(String) : undefined;
            } else if (REGISTERED.indexOf(k) < 0 && isNamespaced(k)) {
                minted[k] = result[k];
            }
        });
        var scopeText = scope && scope.length ? scope.join(' ') : undefined;
        if ('scp' in minted) {
            if (scope && scope.length) { minted.scp = scope; } else { delete minted.scp; }
        } else if (scopeText) {
            minted.scope = scopeText;
        } else {
            delete minted.scope;
        }
        answer.access_token = await sign(verified.header.typ, minted);
        if (scopeText) { answer.scope = scopeText; } else { delete answer.scope; }
        r.headersOut['Content-Type'] = 'application/json';
        r.headersOut['Cache-Control'] = 'no-store';
        r.return(200, JSON.stringify(answer));
    } catch (e) {
        r.error('exchange failed: ' + e.message);
        oauthError(r, 502, 'server_error', 'the exchange failed');
    }
}

function jwks(r) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(200, JSON.stringify(bench.jwks));
}

export default { token: token, jwks: jwks };
