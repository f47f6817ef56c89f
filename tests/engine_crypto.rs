//! Node's `crypto` key objects, signatures and ciphers at the unit level, beyond what the
//! jsonwebtoken/jose/cipher hooks of `tests/node_compat.rs` reach: every key format in and out,
//! Ed25519, P-384, RSA-PSS, X.509 certificates, streams and callbacks, and the errors packages
//! test for. Each `tests/engine_crypto/<name>.js` is a hook file; its expected value below is
//! what Node 20 gives for the same file (`sh tests/engine_crypto/run-under-node.sh <name>.js`),
//! pasted as is.

mod engine_support;

use engine_support::*;
use serde_json::Value;

/// One call of `source` as a hook on a fresh engine; cb's value.
fn run(source: &str) -> Value {
    let (_dir, h, engine) = single(source, "", 1);
    match engine.call_blocking(&h, vec![], "r") {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

/// Compares key by key first, so a failure names the entry that differs.
fn assert_like_node(got: Value, expected: &str) {
    let want: Value = serde_json::from_str(expected).unwrap();
    if let (Some(g), Some(w)) = (got.as_object(), want.as_object()) {
        for (k, wv) in w {
            assert_eq!(g.get(k), Some(wv), "key {k}");
        }
    }
    assert_eq!(got, want);
}

/// PEM, DER (PKCS#1, PKCS#8, SPKI, SEC1) and JWK in and out for RSA, P-256, P-384 and Ed25519, a
/// certificate's public key, `asymmetricKeyDetails`, `equals`, secret keys (and HMAC with one),
/// and Node's errors for keys it cannot use.
#[test]
fn key_objects_read_and_write_every_format_like_node() {
    assert_like_node(
        run(include_str!("engine_crypto/keys.js")),
        r##"{"errors":["Error | ERR_OSSL_UNSUPPORTED | error:1E08010C:DECODER routines::unsupported","TypeError | ERR_INVALID_ARG_TYPE | The \"key\" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView. Received type number (42)","TypeError | ERR_INVALID_ARG_TYPE | The \"key\" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey. Received type number (42)","TypeError | ERR_INVALID_ARG_TYPE | The \"key\" argument must be of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey. Received type number (42)","TypeError | ERR_INVALID_ARG_VALUE | The property 'options.type' is invalid. Received undefined","Error | ERR_CRYPTO_INCOMPATIBLE_KEY_OPTIONS | The selected key encoding pkcs1 can only be used for RSA keys.","TypeError | ERR_INVALID_ARG_TYPE | The \"handle\" argument must be of type object. Received undefined","TypeError | ERR_INVALID_ARG_VALUE | The argument 'type' is invalid. Received 'nope'"],"pemVariants":[true,true,"ec",true],"kinds":[["private","rsa","{\"modulusLength\":2048,\"publicExponent\":\"bigint:65537\"}"],["private","ec","{\"namedCurve\":\"prime256v1\"}"],["private","ed25519","{}"],["private","ec","{\"namedCurve\":\"secp384r1\"}"],["public","ec","{\"namedCurve\":\"prime256v1\"}"]],"instance":[true,"[object KeyObject]"],"certSpki":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqVl8s6l0HOY0S4Egp82HzSI54qSvKJbKuBOXtvSTQ54GmJZBQa1REXinW/KA9Crhy132l5I+pYx9GohmVijZZQ==","derRoundTrips":[true,true,true,true,true,true,false,false],"pem":["-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEID6zzI7Dl+RdQ9ewfhVO14JUw1bqEYNzGTw+Ozi6ikdS\n-----END PRIVATE KEY-----\n","-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAD/zVY3JFUEC2sT6AwjgDDxODzirvi5oxWIIctDt38TQ=\n-----END PUBLIC KEY-----\n","-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEg9QY/LLKqmw5ia7+I4Dspn3O3R/JhENU\nQX5hgdgc94dQzBoU2acjGwvxTfA7OYAABkH/dl79R5zwNz+WwxuiX7b7gY+KohTt\ngfSeUkY2pJb7Wg/r4N4TxUbVFqbfdHOj\n-----END PUBLIC KEY-----\n"],"jwk":[{"crv":"Ed25519","d":"PrPMjsOX5F1D17B-FU7XglTDVuoRg3MZPD47OLqKR1I","x":"D_zVY3JFUEC2sT6AwjgDDxODzirvi5oxWIIctDt38TQ","kty":"OKP"},{"kty":"EC","x":"g9QY_LLKqmw5ia7-I4Dspn3O3R_JhENUQX5hgdgc94dQzBoU2acjGwvxTfA7OYAA","y":"BkH_dl79R5zwNz-WwxuiX7b7gY-KohTtgfSeUkY2pJb7Wg_r4N4TxUbVFqbfdHOj","crv":"P-384"}],"jwkBack":[true,true,true],"secret":["secret",6,null,"s3cret",true,false],"hmacWithKeyObject":"18cf739b1231459a52b72b5a49b5690807adf6900f2ef1e74cba25325066d155"}"##,
    );
}

/// Ed25519 and RSA PKCS#1 v1.5 signatures byte for byte, RSA-PSS, P-384 in IEEE P1363, ECDSA in
/// DER, Sign/Verify fed as streams, the callback forms, and the errors for the wrong key type.
#[test]
fn signatures_like_node() {
    assert_like_node(
        run(include_str!("engine_crypto/signatures.js")),
        r##"{"ed25519":"q6D2Tr72Q+ZDTk29GzreX8JAupVbziymLpSR1AWVZDh0UzW2OjxyYcbVrYi2ttBhOkeA3nfIMHieGK/6EYiNDg==","ed25519Verify":[true,false],"rsa":["1aeb67d24a21d135ee9e70314c115ba4","9c83becf7b0743ba47a6e8f7fe683a2a","7a087d6647b0b751fe3711749240422c","1aeb67d24a21d135ee9e70314c115ba4"],"pss":[256,true,true,false],"p384":[96,true,false],"ecDer":[48,true,false],"streamed":true,"verifier":true,"errors":["TypeError | ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE | Invalid key object type public, expected private.","TypeError | ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE | Invalid key object type secret, expected private.","TypeError | ERR_CRYPTO_INVALID_DIGEST | Invalid digest","no error"],"callbacks":[null,null,true]}"##,
    );
}

/// AES-ECB and AES-192-GCM with a short tag, CTR decrypted a byte at a time into UTF-8, a cipher
/// used as a Transform stream, and Node's errors for a short final block, a second final and an
/// unknown cipher.
#[test]
fn ciphers_like_node() {
    assert_like_node(
        run(include_str!("engine_crypto/ciphers.js")),
        r##"{"ecb":"3ad77bb40d7a3660a89ecaf32466ef97","gcm192":["ef5204c703cbd4622711232847e3411f40ad990de6dfb3b6","d3f598121e16281d"],"gcm192Back":"sixteen byte blk+ a tail","noPadding":"Error | ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH | error:1C80006B:Provider routines::wrong final block length","utf8Split":"héllo wörld ✓ ✓ ✓","finalTwice":"Error | ERR_CRYPTO_INVALID_STATE | Invalid state","unknown":"Error | ERR_CRYPTO_UNKNOWN_CIPHER | Unknown cipher","listed":[true,true,true],"stream":"f54c746b0bdb7f0b2d34a1d9a5883601792129d0331619e84e33ef97a82a128c"}"##,
    );
}
