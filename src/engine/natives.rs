//! The Rust half of Node's `crypto`, `zlib`, `TextEncoder`/`TextDecoder` and WHATWG `URL`: pure
//! functions from bytes or strings to bytes or strings, installed on the `native` object the
//! built-in modules and globals reach (`require.native` in a built-in).
//!
//! Owns: digests, HMAC, randomness, deflate/gzip in both directions, UTF-8, and URL parsing with
//! WHATWG's setters (the `url` crate's `quirks`, which implements the URL Standard's API).
//! Key objects, signatures, AES and PBKDF2 are `natives/crypto.rs`, and Actions' `api.cache` store
//! `natives/cache.rs` (the one native that keeps state), installed from here.
//! Must not touch: JS classes and streaming — `crypto.js`, `zlib.js`, `text.js` and `url.js` wrap
//! these functions in Node's shapes. Nothing here does I/O or keeps state between calls.

use std::io::Read;

use hmac::Mac;
use rquickjs::{Ctx, Exception, Function, Object, Value};
use sha2::Digest;

use super::bytes::{bytes_in, bytes_out};

pub(crate) mod cache;
pub(crate) mod crypto;

/// Install every native of this file on `native`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, native: &Object<'js>) -> rquickjs::Result<()> {
    crypto::install(ctx, native)?;
    cache::install(ctx, native)?;
    native.set(
        "digest",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, alg: String, data: Value<'js>| -> rquickjs::Result<Value<'js>> {
                let data = bytes_in(&data)?;
                match digest(&alg, &data) {
                    Some(out) => bytes_out(&ctx, out),
                    None => Err(Exception::throw_message(
                        &ctx,
                        "Digest method not supported",
                    )),
                }
            },
        )?,
    )?;
    native.set(
        "hmac",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>,
             alg: String,
             key: Value<'js>,
             data: Value<'js>|
             -> rquickjs::Result<Value<'js>> {
                let (key, data) = (bytes_in(&key)?, bytes_in(&data)?);
                match hmac(&alg, &key, &data) {
                    Some(out) => bytes_out(&ctx, out),
                    None => Err(Exception::throw_message(
                        &ctx,
                        &format!("Invalid digest: {alg}"),
                    )),
                }
            },
        )?,
    )?;
    native.set(
        "randomBytes",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, n: f64| -> rquickjs::Result<Value<'js>> {
                if !(0.0..=f64::from(1u32 << 30)).contains(&n) {
                    return Err(Exception::throw_range(
                        &ctx,
                        "The value of \"size\" is out of range.",
                    ));
                }
                let mut out = vec![0u8; n as usize];
                rand::Rng::fill(&mut rand::rng(), &mut out[..]);
                bytes_out(&ctx, out)
            },
        )?,
    )?;
    native.set(
        "zlib",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, op: String, data: Value<'js>| -> rquickjs::Result<Value<'js>> {
                let data = bytes_in(&data)?;
                match zlib(&op, &data) {
                    Ok(out) => bytes_out(&ctx, out),
                    Err(message) => {
                        let e = Exception::from_message(ctx.clone(), &message)?;
                        e.set("code", "Z_DATA_ERROR")?;
                        e.set("errno", -3)?;
                        Err(ctx.throw(e.into_value()))
                    }
                }
            },
        )?,
    )?;
    native.set(
        "utf8Encode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, s: rquickjs::Coerced<String>| -> rquickjs::Result<Value<'js>> {
                bytes_out(&ctx, s.0.into_bytes())
            },
        )?,
    )?;
    native.set(
        "utf8Decode",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, data: Value<'js>, fatal: bool| -> rquickjs::Result<String> {
                let data = bytes_in(&data)?;
                if fatal {
                    String::from_utf8(data).map_err(|_| {
                        Exception::throw_type(
                            &ctx,
                            "The encoded data was not valid for encoding utf-8",
                        )
                    })
                } else {
                    Ok(String::from_utf8_lossy(&data).into_owned())
                }
            },
        )?,
    )?;
    native.set(
        "urlParse",
        Function::new(
            ctx.clone(),
            |input: String, base: Option<String>| -> Option<Vec<String>> {
                url_parse(&input, base.as_deref()).map(|u| url_parts(&u))
            },
        )?,
    )?;
    native.set(
        "urlSet",
        Function::new(
            ctx.clone(),
            |href: String, field: String, value: String| -> Option<Vec<String>> {
                let mut u = url::Url::parse(&href).ok()?;
                url_set(&mut u, &field, &value).then(|| url_parts(&u))
            },
        )?,
    )?;
    native.set(
        "domainToASCII",
        Function::new(ctx.clone(), |domain: String| {
            url::quirks::domain_to_ascii(&domain)
        })?,
    )?;
    native.set(
        "domainToUnicode",
        Function::new(ctx.clone(), |domain: String| {
            url::quirks::domain_to_unicode(&domain)
        })?,
    )?;
    Ok(())
}

/// Run `$body` with `$D` bound to the digest type Node calls `$alg` (case-insensitive, `RSA-`
/// prefixes as OpenSSL accepts them); `None` for a name hookgate does not offer.
macro_rules! with_digest {
    ($alg:expr, $D:ident => $body:expr) => {{
        let alg = $alg.to_ascii_lowercase();
        match alg.strip_prefix("rsa-").unwrap_or(&alg) {
            "md5" => {
                type $D = md5::Md5;
                Some($body)
            }
            "sha1" | "sha-1" => {
                type $D = sha1::Sha1;
                Some($body)
            }
            "sha224" | "sha-224" => {
                type $D = sha2::Sha224;
                Some($body)
            }
            "sha256" | "sha-256" => {
                type $D = sha2::Sha256;
                Some($body)
            }
            "sha384" | "sha-384" => {
                type $D = sha2::Sha384;
                Some($body)
            }
            "sha512" | "sha-512" => {
                type $D = sha2::Sha512;
                Some($body)
            }
            _ => None,
        }
    }};
}

fn digest(alg: &str, data: &[u8]) -> Option<Vec<u8>> {
    with_digest!(alg, D => D::digest(data).to_vec())
}

fn hmac(alg: &str, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    with_digest!(alg, D => {
        let mut m = <hmac::Hmac<D> as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC accepts keys of any length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    })
}

/// One whole zlib operation; errors carry zlib's own messages, as Node reports them.
fn zlib(op: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
    use flate2::Compression;
    let mut out = Vec::new();
    let read = |mut r: Box<dyn Read + '_>, out: &mut Vec<u8>| {
        r.read_to_end(out).map(|_| ()).map_err(|e| e.to_string())
    };
    match op {
        "gunzip" => read(Box::new(MultiGzDecoder::new(data)), &mut out)
            .map_err(|_| "incorrect header check".to_owned())?,
        "inflate" => read(Box::new(ZlibDecoder::new(data)), &mut out)
            .map_err(|_| "incorrect header check".to_owned())?,
        "inflateRaw" => read(Box::new(DeflateDecoder::new(data)), &mut out)
            .map_err(|_| "invalid stored block lengths".to_owned())?,
        // Node's unzip: gzip or zlib, told apart by the header.
        "unzip" => {
            if data.starts_with(&[0x1f, 0x8b]) {
                return zlib("gunzip", data);
            }
            return zlib("inflate", data);
        }
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
            std::io::Write::write_all(&mut e, data).map_err(|e| e.to_string())?;
            out = e.finish().map_err(|e| e.to_string())?;
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
            std::io::Write::write_all(&mut e, data).map_err(|e| e.to_string())?;
            out = e.finish().map_err(|e| e.to_string())?;
        }
        "deflateRaw" => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
            std::io::Write::write_all(&mut e, data).map_err(|e| e.to_string())?;
            out = e.finish().map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown zlib operation `{other}`")),
    }
    Ok(out)
}

fn url_parse(input: &str, base: Option<&str>) -> Option<url::Url> {
    match base {
        Some(b) => url::Url::parse(b).ok()?.join(input).ok(),
        None => url::Url::parse(input).ok(),
    }
}

/// `[href, origin, protocol, username, password, host, hostname, port, pathname, search, hash]`.
fn url_parts(u: &url::Url) -> Vec<String> {
    use url::quirks as q;
    vec![
        q::href(u).to_owned(),
        q::origin(u),
        q::protocol(u).to_owned(),
        q::username(u).to_owned(),
        q::password(u).to_owned(),
        q::host(u).to_owned(),
        q::hostname(u).to_owned(),
        q::port(u).to_owned(),
        q::pathname(u).to_owned(),
        q::search(u).to_owned(),
        q::hash(u).to_owned(),
    ]
}

/// A WHATWG URL setter. `false` only for an `href` that does not parse (the setter throws);
/// the other setters ignore bad values, as the standard says.
fn url_set(u: &mut url::Url, field: &str, value: &str) -> bool {
    use url::quirks as q;
    match field {
        "href" => return q::set_href(u, value).is_ok(),
        "protocol" => drop(q::set_protocol(u, value)),
        "username" => drop(q::set_username(u, value)),
        "password" => drop(q::set_password(u, value)),
        "host" => drop(q::set_host(u, value)),
        "hostname" => drop(q::set_hostname(u, value)),
        "port" => drop(q::set_port(u, value)),
        "pathname" => q::set_pathname(u, value),
        "search" => q::set_search(u, value),
        "hash" => q::set_hash(u, value),
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn digests_and_hmacs_match_nodes_answers() {
        // Values from Node 20: crypto.createHash(alg).update('abc').digest('hex').
        assert_eq!(
            hex(&digest("md5", b"abc").unwrap()),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hex(&digest("SHA1", b"abc").unwrap()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&digest("RSA-SHA256", b"abc").unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // crypto.createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog')
        assert_eq!(
            hex(&hmac(
                "sha256",
                b"key",
                b"The quick brown fox jumps over the lazy dog"
            )
            .unwrap()),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert!(digest("whirlpool", b"abc").is_none());
        assert!(hmac("nope", b"k", b"abc").is_none());
    }

    #[test]
    fn zlib_round_trips_and_names_bad_data_like_node() {
        let text = b"hello hello hello hello".to_vec();
        for (pack, unpack) in [
            ("gzip", "gunzip"),
            ("deflate", "inflate"),
            ("deflateRaw", "inflateRaw"),
            ("gzip", "unzip"),
            ("deflate", "unzip"),
        ] {
            let packed = zlib(pack, &text).unwrap();
            assert_eq!(zlib(unpack, &packed).unwrap(), text, "{pack} -> {unpack}");
        }
        assert_eq!(
            zlib("gunzip", b"not gzip").unwrap_err(),
            "incorrect header check"
        );
    }

    #[test]
    fn url_parts_follow_the_url_standard() {
        let u = url_parse("../x?y=1#z", Some("https://user:pw@Example.COM:8443/a/b/c")).unwrap();
        assert_eq!(
            url_parts(&u),
            vec![
                "https://user:pw@example.com:8443/a/x?y=1#z",
                "https://example.com:8443",
                "https:",
                "user",
                "pw",
                "example.com:8443",
                "example.com",
                "8443",
                "/a/x",
                "?y=1",
                "#z"
            ]
        );
        let mut u = url::Url::parse("http://a.example/p").unwrap();
        assert!(url_set(&mut u, "port", "8080"));
        assert!(url_set(&mut u, "search", "q=a b"));
        assert_eq!(u.as_str(), "http://a.example:8080/p?q=a%20b");
        assert!(!url_set(&mut u, "href", "not a url"));
        assert!(url_parse("not a url", None).is_none());
    }
}
