//! Addresses in the file or the environment: `host:port` to a socket address, resolved once, at
//! load time, and reported where it was written (or under the variable that overrode it).
//!
//! Owns: that resolution. Must not: bind or connect.

use std::net::SocketAddr;

use toml::Spanned;

use super::Validator;

impl Validator<'_> {
    pub(super) fn socket_addr(
        &mut self,
        value: &Spanned<String>,
        key: &str,
        env_override: Option<(&str, String)>,
    ) -> Option<SocketAddr> {
        let (text, span, key) = match &env_override {
            Some((var, v)) => (v.as_str(), 0..0, format!("{key} (from ${var})")),
            None => (value.get_ref().as_str(), value.span(), key.to_string()),
        };
        match resolve(text) {
            Ok(a) => Some(a),
            Err(msg) => {
                self.error(span, key, msg);
                None
            }
        }
    }
}

/// `host:port` to a socket address; names are resolved once, at load time.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !text.contains(':') {
        return Err(format!("`{text}` has no port: write it as host:port"));
    }
    text.to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{text}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{text}` resolves to no address"))
}
