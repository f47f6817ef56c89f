//! The management API's certificate: the configured one (`[admin] tls_cert` + `tls_key`, PEM), or
//! a self-signed one for `localhost`, `127.0.0.1` and `::1`, made with `rcgen` on first start and
//! kept in `.hookgate/` beside the configuration file (key 0600), so that clients told to trust it
//! once (`NODE_EXTRA_CA_CERTS=<path>`) keep trusting it across restarts.
//!
//! Owns: loading and making that certificate. Must not: accept connections (the API does).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};

use crate::admin::store::write_atomic;
use crate::config::Config;

/// Where the certificate came from; its PEM's path is what clients are told to trust.
pub struct Certificate {
    pub server: Arc<rustls::ServerConfig>,
    pub cert_path: PathBuf,
    pub self_signed: bool,
}

/// The certificate of `[admin]`, or the self-signed one (made now if there is none yet).
pub fn load(config: &Config) -> anyhow::Result<Certificate> {
    let (cert_path, key_path, self_signed) = match (&config.admin.tls_cert, &config.admin.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        _ => {
            let dir = config.base_dir().join(".hookgate");
            let (c, k) = (dir.join("admin-tls.crt"), dir.join("admin-tls.key"));
            if !(c.is_file() && k.is_file()) {
                make_self_signed(&dir, &c, &k)?;
            }
            (c, k, true)
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} and {} do not make a certificate and its key",
                cert_path.display(),
                key_path.display()
            )
        })?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Certificate {
        server: Arc::new(server),
        cert_path,
        self_signed,
    })
}

fn make_self_signed(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let made = rcgen::generate_simple_self_signed(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .context("cannot make a self-signed certificate")?;
    write_atomic(
        key,
        made.signing_key.serialize_pem().as_bytes(),
        Some(0o600),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    write_atomic(cert, made.cert.pem().as_bytes(), Some(0o644))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for the management API");
    Ok(())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs: Vec<_> = pem::parse_many(&bytes)
        .with_context(|| format!("{} is not PEM", path.display()))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    anyhow::ensure!(!certs.is_empty(), "{} holds no CERTIFICATE", path.display());
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    for p in pem::parse_many(&bytes).with_context(|| format!("{} is not PEM", path.display()))? {
        let key = match p.tag() {
            "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.into_contents())),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(p.into_contents())),
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(p.into_contents())),
            _ => continue,
        };
        return Ok(key);
    }
    anyhow::bail!("{} holds no private key", path.display())
}

/// The PEM file a client of this configuration's API should trust: `[admin] tls_cert`, or the
/// self-signed certificate's place (which exists once hookgate has started with an API).
pub fn trusted_cert_path(config: &Config) -> PathBuf {
    match &config.admin.tls_cert {
        Some(c) => c.clone(),
        None => config.base_dir().join(".hookgate").join("admin-tls.crt"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_self_signed_certificate_is_made_once_kept_and_its_key_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, "[upstream]\naddress = \"127.0.0.1:1\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        let first = load(&config).unwrap();
        assert!(first.self_signed);
        assert_eq!(first.cert_path, trusted_cert_path(&config));
        let pem = std::fs::read(&first.cert_path).unwrap();
        let key = dir.path().join(".hookgate/admin-tls.key");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        load(&config).unwrap();
        assert_eq!(std::fs::read(&first.cert_path).unwrap(), pem, "reused");
    }

    #[test]
    fn a_configured_certificate_that_is_not_one_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookgate.toml");
        std::fs::write(dir.path().join("c.pem"), "not a certificate").unwrap();
        std::fs::write(dir.path().join("k.pem"), "not a key").unwrap();
        std::fs::write(
            &path,
            "[upstream]\naddress = \"127.0.0.1:1\"\n[admin]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
        )
        .unwrap();
        let e = format!("{:#}", load(&Config::load(&path).unwrap()).err().unwrap());
        assert!(e.contains("c.pem"), "{e}");
    }
}
