//! `hookgate keys generate`: a new signing key for re-signed access tokens.
//!
//! Owns: the subcommand's arguments and writing the key file (never over an existing one, mode
//! 0600). Must not: know how a key signs or what it looks like (`crate::token` does).

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use super::Failure;
use crate::token::{keys, Alg, SigningKey};

/// `hookgate keys <command>`: prints what it wrote, or fails with exit code 1.
pub fn run(command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Generate { alg, out } => {
            let msg = generate_key(&alg, &out).map_err(Failure::failed)?;
            println!("{msg}");
            Ok(())
        }
    }
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Write a new private key (PKCS#8 PEM) for re-signing access tokens.
    Generate {
        /// RS256, ES256 or EdDSA. ES256 signs about ten times faster than RS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
        /// Where to write it; refuses to overwrite an existing file.
        #[arg(long)]
        out: PathBuf,
    },
}

fn generate_key(alg: &str, out: &std::path::Path) -> Result<String, String> {
    let alg = Alg::parse(alg)
        .ok_or_else(|| format!("unknown algorithm `{alg}`: use RS256, ES256 or EdDSA"))?;
    if out.exists() {
        return Err(format!(
            "{} exists; hookgate will not overwrite a key",
            out.display()
        ));
    }
    let pem = keys::generate_pem(alg)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(out)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let key = SigningKey::from_pem(pem.as_bytes())?;
    Ok(format!(
        "wrote {} ({}, kid {})",
        out.display(),
        key.alg.name(),
        key.kid
    ))
}
