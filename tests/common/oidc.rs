#![allow(dead_code)]
//! A real OAuth/OIDC server (node-oidc-provider, `tests/oidc/server.mjs`) for
//! integration tests.
//!
//! ```ignore
//! let oidc = common::oidc::OidcServer::start();
//! let token_url = oidc.token_url(); // http://127.0.0.1:<port>/token
//! ```
//!
//! Needs `node` on PATH and `npm ci --prefix tests/oidc` run once.
//! The server issues RS256 JWT access tokens (typ `at+jwt`) for the audience
//! `https://api.example.com/` to the clients listed in `tests/oidc/clients.json`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Path of the token endpoint on the OIDC server (the provider's default).
pub const TOKEN_PATH: &str = "/token";
/// Path of the JWKS document.
pub const JWKS_PATH: &str = "/jwks";
/// Path of the discovery document.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The resource indicator / Auth0-style audience the server issues JWTs for.
pub const AUDIENCE: &str = "https://api.example.com/";
/// `client_secret_post` client.
pub const POST_CLIENT_ID: &str = "m2m-post";
pub const POST_CLIENT_SECRET: &str = "m2m-post-secret";
/// `client_secret_basic` client.
pub const BASIC_CLIENT_ID: &str = "m2m-basic";
pub const BASIC_CLIENT_SECRET: &str = "m2m-basic-secret";

/// A bound on start-up, not a timing: node-oidc-provider loads in about a second, but test
/// binaries that saturate both cores on purpose (hostile_hooks' CPU-loop hooks, each test with
/// its own engine) left it without a ready line after 30 s in one CI run.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// `<repo>/tests/oidc`.
pub fn oidc_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("oidc")
}

/// The parsed `tests/oidc/clients.json` (audience, scopes, clients).
pub fn clients_json() -> serde_json::Value {
    let path = oidc_dir().join("clients.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("invalid {}: {e}", path.display()))
}

/// A running `tests/oidc/server.mjs`; killed when dropped.
pub struct OidcServer {
    pub port: u16,
    pub issuer: String,
    child: Child,
}

impl OidcServer {
    /// Spawns `node tests/oidc/server.mjs --port 0` and waits (up to 30 s) for
    /// its ready line. Panics, with the server's stderr, if it does not come up.
    pub fn start() -> OidcServer {
        let dir = oidc_dir();
        if !dir.join("node_modules").join("oidc-provider").is_dir() {
            panic!(
                "{}/node_modules is missing: run `npm ci --prefix tests/oidc` \
                 (from the repository root) before these tests",
                dir.display()
            );
        }

        let mut child = Command::new("node")
            .arg(dir.join("server.mjs"))
            .args(["--port", "0", "--exit-with-stdin"])
            .current_dir(&dir)
            // Kept open for the child's lifetime: if this process dies without
            // running Drop, the pipe closes and the server exits by itself.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `node` for the OIDC test server: {e}"));

        let stderr_buf = Arc::new(Mutex::new(String::new()));
        let stderr_thread = {
            let mut stderr = child.stderr.take().expect("piped stderr");
            let buf = Arc::clone(&stderr_buf);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                loop {
                    match stderr.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                            // Keep only the start; the rest is drained and dropped.
                            if b.len() < 64 * 1024 {
                                b.push_str(&String::from_utf8_lossy(&chunk[..n]));
                            }
                        }
                    }
                }
            })
        };

        let (tx, rx) = mpsc::channel::<String>();
        {
            let stdout = child.stdout.take().expect("piped stdout");
            thread::spawn(move || {
                let mut sent = false;
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if !sent && line.contains("\"ready\"") {
                        sent = true;
                        let _ = tx.send(line);
                    }
                    // Keep draining stdout so the child never blocks on it.
                }
            });
        }

        let fail = |child: &mut Child, why: String| -> ! {
            let _ = child.kill();
            let status = child.wait();
            // The child is gone, so its stderr reaches EOF and the reader ends.
            let _ = stderr_thread.join();
            let stderr = stderr_buf.lock().unwrap_or_else(|p| p.into_inner()).clone();
            panic!("OIDC test server failed to start: {why} (exit: {status:?})\n--- server stderr ---\n{stderr}");
        };

        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => fail(
                &mut child,
                format!("no ready line within {READY_TIMEOUT:?}"),
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                fail(&mut child, "stdout closed before the ready line".into())
            }
        };

        let ready: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => fail(&mut child, format!("bad ready line {line:?}: {e}")),
        };
        let port = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok());
        let issuer = ready["issuer"].as_str().map(str::to_owned);
        match (ready["ready"].as_bool(), port, issuer) {
            (Some(true), Some(port), Some(issuer)) => OidcServer {
                port,
                issuer,
                child,
            },
            _ => fail(&mut child, format!("unexpected ready line {line:?}")),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash; equals the issuer).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.base_url())
    }

    /// `http://127.0.0.1:<port>/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("{}{JWKS_PATH}", self.base_url())
    }

    /// `host:port`, e.g. for an upstream address.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
