//! Secrets in the configuration: where a value comes from ([`SecretSource`]: an environment
//! variable or a file), the one reader of it ([`read_secret`]), and a value that is never
//! printed ([`Secret`]).
//!
//! Owns: reading a secret's value. A route's `webhook_secret` (at load) and a hook's `secrets`
//! (when a generation loads) both read through [`read_secret`], so both trim alike.
//! Must not: log or print a value.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable of hookgate's process.
    Env(String),
    /// A file (relative paths: to the configuration file's folder). One trailing line ending
    /// (`\n` or `\r\n`) is removed.
    File(PathBuf),
}

/// A secret value from the configuration; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A secret's value: an environment variable (`env` answers look-ups: a parameter so the
/// configuration's tests need not touch the process environment), or a file, relative to
/// `base_dir` (the configuration's folder). One line ending is dropped from a file's value, `\n`
/// as `echo` writes it or `\r\n` as an editor on Windows does: no secret ends in one (a bearer
/// secret with a `\r` could never match a header), and a file that holds one usually does.
pub fn read_secret(
    source: &SecretSource,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match source {
        SecretSource::Env(var) => {
            env(var).ok_or_else(|| format!("environment variable {var} is not set: `export {var}=…` before starting hookgate, or read it from a file with `{{ file = \"path\" }}`"))
        }
        SecretSource::File(path) => {
            let path = base_dir.join(path);
            let mut s = std::fs::read_to_string(&path)
                .map_err(|e| {
                    format!(
                        "cannot read {}: {e}: write the secret into that file (`printf %s '…' > {}`), or read it from `{{ env = \"VAR\" }}`",
                        path.display(),
                        path.display()
                    )
                })?;
            if s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
            Ok(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_loses_one_line_ending_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let read = |content: &str| {
            std::fs::write(dir.path().join("s"), content).unwrap();
            read_secret(&SecretSource::File("s".into()), dir.path(), &|_| None).unwrap()
        };
        assert_eq!(read("s3cret\n"), "s3cret");
        assert_eq!(read("s3cret\r\n"), "s3cret");
        assert_eq!(read("s3cret"), "s3cret");
        assert_eq!(read("s3cret\n\n"), "s3cret\n", "one line ending only");
        assert_eq!(
            read(" s3cret \n"),
            " s3cret ",
            "spaces are part of the secret"
        );
    }

    #[test]
    fn a_missing_secret_says_how_to_provide_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = |k: &str| (k == "SET").then(|| "v".to_string());
        assert_eq!(
            read_secret(&SecretSource::Env("SET".into()), dir.path(), &env),
            Ok("v".to_string())
        );
        let e = read_secret(&SecretSource::Env("UNSET".into()), dir.path(), &env).unwrap_err();
        assert!(e.contains("environment variable UNSET is not set"), "{e}");
        let e = read_secret(&SecretSource::File("nope".into()), dir.path(), &env).unwrap_err();
        assert!(e.contains("cannot read") && e.contains("printf %s"), "{e}");
    }
}
