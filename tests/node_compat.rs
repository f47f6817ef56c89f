//! Node compatibility, end to end: every hook in `tests/node-compat/hooks/` requires the npm
//! package real Auth0 hooks used (axios, request, slack-notify, node-fetch, graphql-request,
//! unirest, twilio, aws-sdk, jsonwebtoken, jose) or Node's own `https` or `crypto`, and runs
//! twice against one stub impersonating the services (`tests/node-compat/stub.js`): under Node 20
//! (`tests/node-compat/reference.js`, the reference) and under `hookgate test --config` with
//! `[hooks.egress.redirect]` pointing the services' hosts at the stub. The cb outcome and the
//! requests the services received must be the same. Each test also pins what the reference
//! produced, so a broken stub or reference cannot make both sides agree on nothing. ECDSA tokens
//! differ on every signing, so those are checked by verifying across: Node verifies the ones
//! hookgate mints, hookgate verifies ones Node minted (in the payloads).
//!
//! Needs `node` on PATH and `scripts/setup` run once (it installs
//! `tests/node-compat/hooks/node_modules`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A child that has not exited by then is killed and the test fails: a hook whose event loop never
/// empties must not hang CI.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node-compat")
}

fn hooks_dir() -> PathBuf {
    suite_dir().join("hooks")
}

/// `tests/node-compat/stub.js`, alive as long as this value (its stdin is the pipe we hold).
struct Stub {
    port: u16,
    hosts: Vec<String>,
    child: Child,
    _stdin: ChildStdin,
}

impl Stub {
    fn start() -> Stub {
        assert!(
            hooks_dir().join("node_modules/axios").is_dir(),
            "{}/node_modules is missing: run scripts/setup first",
            hooks_dir().display()
        );
        let mut child = Command::new("node")
            .arg(suite_dir().join("stub.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn `node` for the stub: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while stdout.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
                line.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
        });
        let line = match rx.recv_timeout(CHILD_LIMIT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the stub printed no ready line within {CHILD_LIMIT:?}");
            }
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the stub's ready line {line:?} is not JSON: {e}"));
        let port = ready["port"].as_u64().expect("ready line has a port") as u16;
        let hosts = ready["hosts"]
            .as_array()
            .expect("ready line lists hosts")
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect();
        Stub {
            port,
            hosts,
            child,
            _stdin: stdin,
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests the services received since the last call, and forget them.
    fn take_recorded(&self) -> Vec<Value> {
        let mut sock = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the stub");
        sock.set_read_timeout(Some(CHILD_LIMIT)).unwrap();
        // HTTP/1.0: the stub answers with a plain body and closes; no chunked decoding needed.
        sock.write_all(b"GET /__recorded HTTP/1.0\r\nHost: stub\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        sock.read_to_end(&mut raw)
            .expect("read the stub's recording");
        let raw = String::from_utf8(raw).expect("the recording is UTF-8");
        let (_, body) = raw
            .split_once("\r\n\r\n")
            .expect("an HTTP answer from the stub");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("bad recording {body:?}: {e}"))
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a run ended, as `hookgate test` reports it (and reference.js imitates).
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Exit 0: the JSON printed on stdout.
    Result(Value),
    /// Exit 1 with `hookgate: the hook called back with an error: <this>` on stderr.
    CalledBackWithError(String),
    /// Anything else: the exit code and everything printed.
    Failed {
        code: Option<i32>,
        stdout: String,
        stderr: String,
    },
}

const ERROR_PREFIX: &str = "hookgate: the hook called back with an error: ";

/// Run `cmd` to completion, killing it (and failing the test) after [`CHILD_LIMIT`].
fn run_bounded(what: &str, mut cmd: Command) -> Outcome {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CHILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not exit within {CHILD_LIMIT:?} and was killed; stderr:\n{}",
                err.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status.code() {
        Some(0) => match serde_json::from_str(&stdout) {
            Ok(v) => Outcome::Result(v),
            Err(_) => Outcome::Failed {
                code: Some(0),
                stdout,
                stderr,
            },
        },
        Some(1) => match stderr.lines().find_map(|l| l.strip_prefix(ERROR_PREFIX)) {
            Some(e) => Outcome::CalledBackWithError(e.to_owned()),
            None => Outcome::Failed {
                code: Some(1),
                stdout,
                stderr,
            },
        },
        code => Outcome::Failed {
            code,
            stdout,
            stderr,
        },
    }
}

/// What a service saw, in the terms compared: method, Host, path and query, content type,
/// credentials, `Accept` (none unless the hook or its package set one, as under Node), the names
/// of every header received, and body.
fn comparable(recorded: &[Value], hook: &str) -> Vec<Value> {
    recorded
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if USES_THE_FETCH_GLOBAL.contains(&hook) {
                r.as_object_mut().unwrap().remove("header_names");
            }
            if let Some(auth) = r["authorization"].as_str() {
                r["authorization"] = json!(normalise_sigv4(auth));
            }
            r
        })
        .collect()
}

/// Hooks whose package uses the `fetch` global when there is one (cross-fetch's polyfill): under
/// the reference, which removes Node 20's fetch as Auth0's Node had none, it falls back to
/// node-fetch and its own headers (`user-agent`, `accept-encoding`); under hookgate it uses
/// hookgate's `fetch`. Everything but the list of header names is still compared.
const USES_THE_FETCH_GLOBAL: &[&str] = &["pre-user-registration/graphql-request.js"];

/// AWS Signature V4 changes every second (the date is signed), and which headers a client signs is
/// its own choice: the stub verifies the signature as SNS does, so only the key id, region and
/// service are compared; the date, signed-header list and signature are masked.
fn normalise_sigv4(auth: &str) -> String {
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 Credential=") else {
        return auth.to_owned();
    };
    let scope = rest.split(',').next().unwrap_or("");
    let parts: Vec<&str> = scope.split('/').collect();
    match parts.as_slice() {
        [key, _date, region, service, "aws4_request"] => format!(
            "AWS4-HMAC-SHA256 Credential={key}/<date>/{region}/{service}/aws4_request, SignedHeaders=<signed>, Signature=<signature>"
        ),
        _ => auth.to_owned(),
    }
}

/// One hook, run under Node and under hookgate against the same stub.
struct Case {
    /// Relative to `tests/node-compat/hooks/`.
    hook: &'static str,
    /// Relative to `tests/node-compat/payloads/`.
    payload: &'static str,
    /// What the Node reference produced (pinned, see the module comment).
    reference: Outcome,
    /// (method, Host, path and query) of each request the reference made, in order.
    requests: &'static [(&'static str, &'static str, &'static str)],
}

fn check(case: Case) {
    let stub = Stub::start();
    let tmp = tempfile::tempdir().unwrap();
    let hook = hooks_dir().join(case.hook);
    let payload = suite_dir().join("payloads").join(case.payload);

    let redirect: serde_json::Map<String, Value> = stub
        .hosts
        .iter()
        .map(|h| (h.clone(), json!(stub.base_url())))
        .collect();
    let redirect_json = tmp.path().join("redirect.json");
    std::fs::write(&redirect_json, Value::Object(redirect).to_string()).unwrap();

    let mut node = Command::new("node");
    node.arg(suite_dir().join("reference.js"))
        .arg(&hook)
        .arg(&payload)
        .arg(&redirect_json);
    let node_outcome = run_bounded(&format!("node reference.js {}", case.hook), node);
    let node_requests = stub.take_recorded();
    assert_eq!(
        node_outcome, case.reference,
        "the Node reference changed: {} no longer behaves as pinned",
        case.hook
    );
    let seen: Vec<(String, String, String)> = node_requests
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["host"].as_str().unwrap_or_default().to_owned(),
                r["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let pinned: Vec<(String, String, String)> = case
        .requests
        .iter()
        .map(|(m, h, p)| (m.to_string(), h.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        seen, pinned,
        "the Node reference's requests changed for {}",
        case.hook
    );

    let mut config = format!(
        "[upstream]\naddress = \"127.0.0.1:1\"\n\n[hooks]\ndir = {:?}\n\n[hooks.egress.redirect]\n",
        hooks_dir().display().to_string()
    );
    for host in &stub.hosts {
        config.push_str(&format!("{host:?} = {:?}\n", stub.base_url()));
    }
    let config_path = tmp.path().join("hookgate.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut hookgate = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    hookgate
        .arg("test")
        .arg("--config")
        .arg(&config_path)
        .arg(&hook)
        .arg("--payload")
        .arg(&payload)
        .current_dir(tmp.path());
    let hookgate_outcome = run_bounded(&format!("hookgate test {}", case.hook), hookgate);
    let hookgate_requests = stub.take_recorded();

    assert_eq!(
        hookgate_outcome, node_outcome,
        "{}: hookgate's cb outcome differs from Node's",
        case.hook
    );
    let (theirs, ours) = (
        comparable(&node_requests, case.hook),
        comparable(&hookgate_requests, case.hook),
    );
    assert!(
        theirs == ours,
        "{}: the services received different requests\n--- under Node:\n{}\n--- under hookgate:\n{}",
        case.hook,
        serde_json::to_string_pretty(&theirs).unwrap(),
        serde_json::to_string_pretty(&ours).unwrap()
    );
}

fn error(message: &str) -> Outcome {
    Outcome::CalledBackWithError(message.to_owned())
}

#[test]
fn axios_gunzips_the_billing_api_answer_and_its_data_becomes_token_claims() {
    check(Case {
        hook: "credentials-exchange/axios.js",
        payload: "axios-billing.json",
        reference: Outcome::Result(json!({
            "scope": ["read:reports"],
            "https://example.com/plan": "enterprise",
            "https://example.com/seats": 25
        })),
        requests: &[(
            "GET",
            "billing.example.com",
            "/v1/customers/Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f/subscription",
        )],
    });
}

#[test]
fn request_posts_json_to_slack_and_reads_the_gzipped_ok() {
    check(Case {
        hook: "post-user-registration/request.js",
        payload: "slack-webhook.json",
        reference: Outcome::Result(json!({ "slack": "ok" })),
        requests: &[(
            "POST",
            "hooks.slack.com",
            "/services/T024BE7LD/B024BE7LH/bHb821LvA7dCyMHD4M4Gso8R",
        )],
    });
}

#[test]
fn request_hook_turns_a_revoked_slack_webhooks_404_into_its_error() {
    check(Case {
        hook: "post-user-registration/request.js",
        payload: "slack-webhook-revoked.json",
        reference: error("Error: Slack answered 404: no_service"),
        requests: &[(
            "POST",
            "hooks.slack.com",
            "/services/T024BE7LD/B024BE7LH/REVOKED",
        )],
    });
}

#[test]
fn slack_notify_message_sent_without_waiting_still_goes_out_after_cb() {
    check(Case {
        hook: "post-user-registration/slack-notify.js",
        payload: "slack-webhook.json",
        // Auth0's example calls cb(null, user, context): the result is the user.
        reference: Outcome::Result(json!({
            "id": "abc", "tenant": "my-tenant", "username": "user1", "email": "user1@foo.com",
            "emailVerified": false, "phoneNumber": "1-000-000-0000", "phoneNumberVerified": false,
            "user_metadata": { "hobby": "surfing" }, "app_metadata": { "plan": "full" }
        })),
        requests: &[(
            "POST",
            "hooks.slack.com",
            "/services/T024BE7LD/B024BE7LH/bHb821LvA7dCyMHD4M4Gso8R",
        )],
    });
}

#[test]
fn node_fetch_enriches_the_new_user_from_fullcontact() {
    check(Case {
        hook: "pre-user-registration/node-fetch.js",
        payload: "node-fetch-enrich.json",
        reference: Outcome::Result(json!({ "user": { "user_metadata": {
            "name": "Jane Doe",
            "location": "Denver, Colorado, United States",
            "title": "Site Reliability Engineer",
            "organization": "Foo Inc."
        } } })),
        requests: &[("POST", "api.fullcontact.com", "/v3/person.enrich")],
    });
}

#[test]
fn graphql_request_puts_the_invitations_account_into_app_metadata() {
    check(Case {
        hook: "pre-user-registration/graphql-request.js",
        payload: "graphql-invited.json",
        reference: Outcome::Result(json!({ "user": { "app_metadata": {
            "account_id": "acct_42", "plan": "team", "role": "admin"
        } } })),
        requests: &[("POST", "accounts.example.com", "/graphql")],
    });
}

#[test]
fn graphql_request_hook_refuses_a_blocked_address_with_pre_user_registration_error() {
    check(Case {
        hook: "pre-user-registration/graphql-request.js",
        payload: "graphql-blocked.json",
        reference: error(
            "PreUserRegistrationError: no usable invitation for spammer@foo.com (user message: Sign-ups are by invitation only.)",
        ),
        requests: &[("POST", "accounts.example.com", "/graphql")],
    });
}

#[test]
fn unirest_creates_the_crm_contact_and_reads_its_id_from_the_location_header() {
    check(Case {
        hook: "pre-user-registration/unirest.js",
        payload: "unirest-crm.json",
        reference: Outcome::Result(json!({ "user": { "app_metadata": {
            "crm_contact_id": "ct_8f14e45f", "crm_created": true
        } } })),
        requests: &[("POST", "crm.example.com", "/api/v1/contacts")],
    });
}

#[test]
fn twilio_takes_its_credentials_from_process_env_and_sends_the_sms() {
    check(Case {
        hook: "send-phone-message/twilio.js",
        payload: "twilio-sms.json",
        reference: Outcome::Result(json!({
            "MessageID": "SMe0a0c60c0d2661e97ed8782a340886dc",
            "status": "queued"
        })),
        requests: &[(
            "POST",
            "api.twilio.com",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        )],
    });
}

#[test]
fn twilio_rejects_an_invalid_number_with_its_rest_exception() {
    check(Case {
        hook: "send-phone-message/twilio.js",
        payload: "twilio-invalid-number.json",
        reference: error(
            "RestException: The 'To' number +15005550001 is not a valid phone number.",
        ),
        requests: &[(
            "POST",
            "api.twilio.com",
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        )],
    });
}

#[test]
fn aws_sdk_sns_publish_promise_sends_a_correctly_signed_sms() {
    check(Case {
        hook: "send-phone-message/aws-sdk.js",
        payload: "sns-sms.json",
        reference: Outcome::Result(json!({ "MessageID": "e0a0c60c-0d26-61e9-7ed8-782a340886dc" })),
        requests: &[("POST", "sns.us-east-1.amazonaws.com", "/")],
    });
}

#[test]
fn aws_sdk_sns_publish_callback_with_global_config_sends_a_correctly_signed_sms() {
    check(Case {
        hook: "send-phone-message/aws-sdk-callback.js",
        payload: "sns-sms.json",
        reference: Outcome::Result(json!({ "MessageID": "e0a0c60c-0d26-61e9-7ed8-782a340886dc" })),
        requests: &[("POST", "sns.us-east-1.amazonaws.com", "/")],
    });
}

#[test]
fn node_https_request_with_a_url_object_posts_to_slack() {
    check(Case {
        hook: "post-change-password/https.js",
        payload: "slack-webhook.json",
        reference: Outcome::Result(json!({ "status": 200, "slack": "ok" })),
        requests: &[(
            "POST",
            "hooks.slack.com",
            "/services/T024BE7LD/B024BE7LH/bHb821LvA7dCyMHD4M4Gso8R",
        )],
    });
}

/// The outcome the Node reference pinned, as JSON text (long tokens read better there).
fn pinned(json_text: &str) -> Outcome {
    Outcome::Result(serde_json::from_str(json_text).expect("pinned JSON"))
}

#[test]
fn jsonwebtoken_mints_the_same_rs256_and_hs256_tokens_as_node_and_verifies_es256_both_ways() {
    check(Case {
        hook: "credentials-exchange/jsonwebtoken.js",
        payload: "jwt-jsonwebtoken.json",
        reference: pinned(
            r#"{
  "scope": [
    "read:reports"
  ],
  "https://example.com/rs256": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJXbDJqUDduNGMzeFoxdlE4bUI2dFIwa1k1aEc5c0QyZiIsInNjb3BlIjoicmVhZDpyZXBvcnRzIiwiaWF0IjoxNzAwMDAwMDAwLCJhdWQiOiJodHRwczovL2JpbGxpbmcuZXhhbXBsZS5jb20vIiwiaXNzIjoiaHR0cHM6Ly9teS10ZW5hbnQuYXV0aDAuY29tLyJ9.Gd8v-xqampgAU0-4W-jLaFE-ua3AY8JHen2GWqK_nfw0-kh9kfiNoPghXYVYY6q6zMPCsXIrH1mMGQXm6FuhK6-sPa9GhTfYYkrbn25s453NzdKznR20xkJSUtedw37GN9UG2gjVNAy__mDBFc493UwQNkF23mQ4YnsfrLZ77lLDQVC9fk1QuC87ZzRh56Twm7T1J9-yCkXhIHrC73tG6o351rNN2CH1DdbHpojhtKd-TzZOUDzzJs_3AKXYJpxniV5HX5DaTu0Am0j3uZrQyiknzAccXxi8l1eldFQ0Lb_8tJi5dnH4YSUJf-g0aV_et1eAHkWAwaYLkDCGmQ1gwQ",
  "https://example.com/hs256": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJXbDJqUDduNGMzeFoxdlE4bUI2dFIwa1k1aEc5c0QyZiIsInNjb3BlIjoicmVhZDpyZXBvcnRzIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAzMDAsImF1ZCI6Imh0dHBzOi8vYmlsbGluZy5leGFtcGxlLmNvbS8iLCJpc3MiOiJodHRwczovL215LXRlbmFudC5hdXRoMC5jb20vIn0.ITQADzK0ehGk_l7FjcZzadbr3jGbo-8QIn9iW5enGUw",
  "https://example.com/rs256_claims": {
    "sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
    "scope": "read:reports",
    "iat": 1700000000,
    "aud": "https://billing.example.com/",
    "iss": "https://my-tenant.auth0.com/"
  },
  "https://example.com/hs256_sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
  "https://example.com/es256_header": {
    "alg": "ES256",
    "typ": "JWT",
    "kid": "k1"
  },
  "https://example.com/es256_sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
  "https://example.com/partner_sub": "partner-jsonwebtoken",
  "https://example.com/tampered": "JsonWebTokenError: invalid signature",
  "https://example.com/wrong_alg": "JsonWebTokenError: invalid algorithm"
}"#,
        ),
        requests: &[],
    });
}

#[test]
fn jose_mints_the_same_rs256_and_hs256_tokens_as_node_and_verifies_es256_through_a_jwks() {
    check(Case {
        hook: "credentials-exchange/jose.js",
        payload: "jwt-jose.json",
        reference: pinned(
            r#"{
  "scope": [
    "read:reports"
  ],
  "https://example.com/rs256": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzY29wZSI6InJlYWQ6cmVwb3J0cyIsInN1YiI6IldsMmpQN240YzN4WjF2UThtQjZ0UjBrWTVoRzlzRDJmIiwiaXNzIjoiaHR0cHM6Ly9teS10ZW5hbnQuYXV0aDAuY29tLyIsImF1ZCI6Imh0dHBzOi8vYmlsbGluZy5leGFtcGxlLmNvbS8iLCJpYXQiOjE3MDAwMDAwMDB9.K4W8PmA6TCvphEey034bElBB7ZPzUnhRpU31k7WcYPHDuhEhN2-yAjFdiOFOdI5aOajKemU3jEtJ60QSNsmjtEMwcL54YBZfJ_7bO6QTDg80n3N-j6O0z7iQw6UWbeKoBLu_rCmgYG2CvTUF45Nu4Af2G1vtkWVclbRVsRcAr0gDtK3K7BAVzz9lQZETbA5WqiJ72dibzkJdn01QNmPVyv13meEG2UkTkE0LhymAve07kpBnViDwTa6HN6FouUygJobym25Ce0u8YUFHU6mJHuKrn9fI2C8Hsnxevs4KzPSFDvwnZP_V8LzaKM6oLyFeSr1ylkk_8AjwrpO38s44jQ",
  "https://example.com/hs256": "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzY29wZSI6InJlYWQ6cmVwb3J0cyIsInN1YiI6IldsMmpQN240YzN4WjF2UThtQjZ0UjBrWTVoRzlzRDJmIiwiaXNzIjoiaHR0cHM6Ly9teS10ZW5hbnQuYXV0aDAuY29tLyIsImF1ZCI6Imh0dHBzOi8vYmlsbGluZy5leGFtcGxlLmNvbS8iLCJpYXQiOjE3MDAwMDAwMDB9.XwyG9qOAy412iwCkpw85NBejw7QdMKVtkFwY9wL9mUY",
  "https://example.com/ec_jwk": {
    "kty": "EC",
    "x": "PKWaID61msRAFg-hb1-ttuoQ1MHJiPavP2qKW0f4SmQ",
    "y": "ju_9ZoHuSVrGAjGBql0IZY-NE5Hf_jlljNNx4OkipVk",
    "crv": "P-256"
  },
  "https://example.com/rs256_sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
  "https://example.com/hs256_sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
  "https://example.com/es256_sub": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
  "https://example.com/partner_sub": "partner-jose",
  "https://example.com/tampered": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED: signature verification failed"
}"#,
        ),
        requests: &[],
    });
}

#[test]
fn aes_gcm_cbc_ctr_and_pbkdf2_give_nodes_bytes_and_nodes_errors() {
    check(Case {
        hook: "pre-user-registration/crypto-ciphers.js",
        payload: "crypto-crm.json",
        reference: pinned(
            r#"{
  "user": {
    "app_metadata": {
      "crm_key": "6656ac07c35794a1fc33ebce0d1d6ad0c58f149bb4a4f1221ccc8b135401cef7",
      "crm_phone": "4U+WKAHebOS5KpuJOoxT",
      "crm_tag": "cUoV8cKHXdldrfP8fwTBNA==",
      "crm_phone_back": "+1-303-555-0147",
      "gcm_vector": [
        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
        "5bc94fbc3221a5db94fae95ae7121a47"
      ],
      "gcm_forged": "Error |  | Unsupported state or unable to authenticate data",
      "cbc_vector": "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2",
      "cbc_padded": "993f48c817946d0ccba1d7c53813cf8441e613d2cb47645dc1825884add9b9c9b0b2a3596ecd601df726bbaa5c087b72",
      "cbc_back": "The quick brown fox jumps over the lazy dog",
      "cbc_bad_padding": "Error | ERR_OSSL_BAD_DECRYPT | error:1C800064:Provider routines::bad decrypt",
      "ctr": "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff",
      "bad_key_length": "RangeError | ERR_CRYPTO_INVALID_KEYLEN | Invalid key length",
      "bad_iv": "TypeError | ERR_CRYPTO_INVALID_IV | Invalid initialization vector",
      "pbkdf2": [
        "0c60c80f961f0e71f3a9b524af6012062fe037a6",
        "4b007901b765489abead49d926f721d065a429c1",
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        "9d9e9c4cd21fe4be24d5b8244c759665"
      ],
      "pbkdf2_no_digest": "TypeError | ERR_INVALID_ARG_TYPE | The \"digest\" argument must be of type string. Received undefined",
      "timing_safe_equal": [
        true,
        false,
        "RangeError | ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH | Input buffers must have the same byte length"
      ],
      "pbkdf2_async": "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43"
    }
  }
}"#,
        ),
        requests: &[],
    });
}

#[test]
fn twilio_access_token_helpers_mint_hs256_tokens_that_read_back_as_under_node() {
    check(Case {
        hook: "credentials-exchange/twilio-access-token.js",
        payload: "twilio-access-token.json",
        reference: pinned(
            r#"{
  "scope": [
    "video:join"
  ],
  "https://example.com/twilio_video": {
    "valid": true,
    "header": {
      "alg": "HS256",
      "typ": "JWT",
      "cty": "twilio-fpa;v=1"
    },
    "grants": {
      "identity": "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f",
      "video": {
        "room": "support"
      }
    },
    "iss": "SK0123456789abcdef0123456789abcdef",
    "sub": "AC0123456789abcdef0123456789abcdef",
    "ttl": 600
  },
  "https://example.com/twilio_voice": {
    "valid": true,
    "scope": "scope:client:outgoing?appSid=AP0123456789abcdef0123456789abcdef",
    "iss": "AC0123456789abcdef0123456789abcdef"
  }
}"#,
        ),
        requests: &[],
    });
}

#[test]
fn jose_verifies_a_partner_token_against_its_remote_jwks_fetched_over_https() {
    check(Case {
        hook: "credentials-exchange/jose-remote-jwks.js",
        payload: "jwt-jose.json",
        reference: Outcome::Result(json!({
            "scope": ["read:reports"],
            "https://example.com/partner_sub": "partner-jose",
            "https://example.com/partner_kid": "k1"
        })),
        requests: &[("GET", "partner.example.com", "/.well-known/jwks.json")],
    });
}

/// `hookgate test` of one hook with no services to reach.
fn hookgate_test(hook: &str, payload: &str) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let config = format!(
        "[upstream]\naddress = \"127.0.0.1:1\"\n\n[hooks]\ndir = {:?}\n",
        hooks_dir().display().to_string()
    );
    let config_path = tmp.path().join("hookgate.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut hookgate = Command::new(env!("CARGO_BIN_EXE_hookgate"));
    hookgate
        .arg("test")
        .arg("--config")
        .arg(&config_path)
        .arg(hooks_dir().join(hook))
        .arg("--payload")
        .arg(suite_dir().join("payloads").join(payload))
        .current_dir(tmp.path());
    run_bounded(&format!("hookgate test {hook}"), hookgate)
}

/// ECDSA signatures differ on every run, so the ES256 tokens hookgate mints are checked by Node
/// itself: `jsonwebtoken.verify` and jose's `jwtVerify` under Node 20 accept them with the public
/// half of the key the hook signed with (and reject them once a byte of the signature changes, so
/// the check can fail).
#[test]
fn es256_tokens_minted_by_hookgate_verify_under_node() {
    let outcome = hookgate_test(
        "credentials-exchange/es256-mint.js",
        "jwt-jsonwebtoken.json",
    );
    let Outcome::Result(result) = outcome else {
        panic!("hookgate did not mint: {outcome:?}");
    };
    let tokens = [
        result["https://example.com/jsonwebtoken"]
            .as_str()
            .expect("jsonwebtoken's token"),
        result["https://example.com/jose"]
            .as_str()
            .expect("jose's token"),
    ];
    let payload: Value = serde_json::from_str(
        &std::fs::read_to_string(suite_dir().join("payloads/jwt-jsonwebtoken.json")).unwrap(),
    )
    .unwrap();
    let key = payload["context"]["webtask"]["secrets"]["JWT_EC_KEY"]
        .as_str()
        .unwrap();
    let script = r#"
const { EC_KEY: key, TOKEN_A: a, TOKEN_B: b } = process.env;
const crypto = require('crypto');
const jwt = require('jsonwebtoken');
const jose = require('jose');
const pub = crypto.createPublicKey(key);
const forge = (t) => t.slice(0, -6) + (t.slice(-6, -5) === 'A' ? 'B' : 'A') + t.slice(-5);
(async () => {
  const out = [];
  for (const t of [a, b]) {
    out.push(jwt.verify(t, pub, { algorithms: ['ES256'] }).sub);
    out.push((await jose.jwtVerify(t, pub)).payload.sub);
    try { jwt.verify(forge(t), pub); out.push('forged accepted'); } catch (e) { out.push(e.message); }
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(3); });
"#;
    let mut node = Command::new("node");
    node.arg("-e")
        .arg(script)
        .env("EC_KEY", key)
        .env("TOKEN_A", tokens[0])
        .env("TOKEN_B", tokens[1])
        .current_dir(hooks_dir());
    let id = "Wl2jP7n4c3xZ1vQ8mB6tR0kY5hG9sD2f";
    assert_eq!(
        run_bounded("node verifying hookgate's ES256 tokens", node),
        Outcome::Result(json!([
            id,
            id,
            "invalid signature",
            id,
            id,
            "invalid signature"
        ]))
    );
}

#[test]
fn a_refused_port_an_unknown_host_and_a_placeholder_url_fail_with_nodes_errors_in_http_and_axios() {
    let refused = json!({
        "name": "Error", "message": "connect ECONNREFUSED 127.0.0.1:2", "errno": -111,
        "code": "ECONNREFUSED", "syscall": "connect", "address": "127.0.0.1", "port": 2,
        "keys": ["errno", "code", "syscall", "address", "port"]
    });
    check(Case {
        hook: "credentials-exchange/unreachable.js",
        payload: "axios-billing.json",
        reference: Outcome::Result(json!({
            "refused": refused,
            "not_found": {
                "name": "Error", "message": "getaddrinfo ENOTFOUND api.nohost.invalid", "errno": -3008,
                "code": "ENOTFOUND", "syscall": "getaddrinfo", "hostname": "api.nohost.invalid",
                "keys": ["errno", "code", "syscall", "hostname"]
            },
            "placeholder": refused,
            "axios": refused,
        })),
        requests: &[],
    });
}

#[test]
fn aws_sdk_retries_5xx_and_throttling_three_times_and_an_unreachable_endpoint_is_unknown_endpoint()
{
    const SNS_EU: (&str, &str, &str) = ("POST", "sns.eu-west-3.amazonaws.com", "/");
    check(Case {
        hook: "send-phone-message/aws-sdk-failures.js",
        payload: "sns-sms.json",
        reference: Outcome::Result(json!({
            "unreachable": {
                "name": "UnknownEndpoint",
                "message": "Inaccessible host: `127.0.0.1' at port `2'. This service may not be available in the `us-east-1' region.",
                "code": "UnknownEndpoint", "retryable": true, "region": "us-east-1",
                "hostname": "127.0.0.1", "original": "NetworkingError"
            },
            "server_error": {
                "name": "InternalFailure",
                "message": "The request processing has failed because of an unknown error, exception or failure.",
                "code": "InternalFailure", "statusCode": 500, "retryable": true
            },
            "throttled": {
                "name": "Throttling", "message": "Rate exceeded", "code": "Throttling",
                "statusCode": 400, "retryable": true
            }
        })),
        // One try and three retries each.
        requests: &[SNS_EU; 8],
    });
}
