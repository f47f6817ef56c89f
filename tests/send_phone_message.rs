//! send-phone-message: the webhook hookgate serves for identity servers with a custom SMS
//! provider. The request never reaches the upstream.

mod common;

use common::hookgate::Hookgate;
use common::upstream::Upstream;
use serde_json::{json, Value};

const ROUTE: &str =
    "[[route]]\nname = \"sms\"\npath = \"/hooks/sms\"\npoint = \"send-phone-message\"\n\
     webhook_secret = { env = \"HOOKGATE_TEST_SMS_SECRET\" }\n";
const SECRET: &str = "sms-webhook-secret";

/// The provider behaves as `context.code` says, so one hookgate covers every outcome.
const PRIMARY: &str = r#"
module.exports = function (recipient, text, context, cb) {
  if (context.code === 'fail') return cb(new Error('provider said no to ' + recipient));
  if (context.code === 'hang') return;
  if (context.code === 'failover') return cb(new Error('primary down'));
  cb(null, { MessageID: 'primary-' + recipient, text: text, type: context.message_type,
             client: context.client.name, user: context.user.email, secret: context.webtask.secrets.API_KEY });
};
"#;
const BACKUP: &str = r#"
module.exports = function (recipient, text, context, cb) {
  if (context.code === 'failover') return cb(null, { MessageID: 'backup-' + recipient });
  if (context.code === 'hang') return;
  cb(new Error('backup is only for failover'));
};
"#;

fn start(upstream: &Upstream) -> Hookgate {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks/send-phone-message");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("a-primary.js"), PRIMARY).unwrap();
    std::fs::write(hooks.join("b-backup.js"), BACKUP).unwrap();
    std::env::set_var("HOOKGATE_TEST_SMS_SECRET", SECRET);
    std::env::set_var("HOOKGATE_TEST_SMS_API_KEY", "k-123");
    let settings =
        "[hooks]\n[[hooks.hook]]\nfile = \"send-phone-message/a-primary.js\"\ntimeout_ms = 1000\n\
         secrets = { API_KEY = { env = \"HOOKGATE_TEST_SMS_API_KEY\" } }\n\
         [[hooks.hook]]\nfile = \"send-phone-message/b-backup.js\"\ntimeout_ms = 1000\n";
    Hookgate::start_in(
        dir,
        &upstream.address(),
        "",
        "",
        &format!("{ROUTE}{settings}"),
    )
}

fn body(code: &str) -> Value {
    json!({
        "recipient": "+15555550100",
        "text": "Your code is 123456",
        "context": {
            "message_type": "sms", "action": "second-factor-authentication", "language": "en",
            "code": code, "ip": "203.0.113.7", "user_agent": "Mozilla/5.0",
            "client": { "client_id": "app1", "name": "My App", "client_metadata": {} },
            "user": { "user_id": "auth0|1", "name": "Ann", "email": "ann@example.com", "app_metadata": {}, "user_metadata": {} }
        }
    })
}

async fn post(hg: &Hookgate, auth: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(hg.url("/hooks/sms"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

#[tokio::test(flavor = "multi_thread")]
async fn success_answers_the_hooks_response() {
    let up = Upstream::start();
    let hg = start(&up);
    let (status, resp) = post(&hg, Some(&bearer()), body("123456").to_string()).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp,
        json!({ "MessageID": "primary-+15555550100", "text": "Your code is 123456", "type": "sms",
                "client": "My App", "user": "ann@example.com", "secret": "k-123" })
    );
    assert!(
        up.seen.lock().unwrap().is_empty(),
        "the webhook never goes upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_or_missing_auth_gets_401() {
    let up = Upstream::start();
    let hg = start(&up);
    for auth in [
        None,
        Some("Bearer nope"),
        Some("Basic c2VjcmV0"),
        Some(&format!("Bearer {SECRET}x")[..]),
    ] {
        let (status, resp) = post(&hg, auth, body("123456").to_string()).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(resp["error"], "invalid_token");
    }
    assert!(!hg.log().contains("primary-"), "no hook ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_400_naming_the_field() {
    let up = Upstream::start();
    let hg = start(&up);
    let mut no_recipient = body("1");
    no_recipient.as_object_mut().unwrap().remove("recipient");
    let mut bad_type = body("1");
    bad_type["context"]["message_type"] = json!("fax");
    for (b, field) in [
        ("{not json".to_string(), "JSON object"),
        (no_recipient.to_string(), "`recipient` is required"),
        (bad_type.to_string(), "`context.message_type`"),
    ] {
        let (status, resp) = post(&hg, Some(&bearer()), b).await;
        assert_eq!(status, 400);
        assert_eq!(resp["error"], "invalid_request");
        assert!(
            resp["error_description"].as_str().unwrap().contains(field),
            "{resp}"
        );
    }
    // Fields the contract does not know are ignored.
    let mut extra = body("123456");
    extra["sender"] = json!("ACME");
    extra["context"]["factor_type"] = json!("first");
    let (status, _) = post(&hg, Some(&bearer()), extra.to_string()).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_provider_fails_over_to_the_next_hook() {
    let up = Upstream::start();
    let hg = start(&up);
    let (status, resp) = post(&hg, Some(&bearer()), body("failover").to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(resp, json!({ "MessageID": "backup-+15555550100" }));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_provider_failing_is_a_generic_500_with_the_errors_logged() {
    let up = Upstream::start();
    let hg = start(&up);
    let (status, resp) = post(&hg, Some(&bearer()), body("fail").to_string()).await;
    assert_eq!(status, 500);
    assert_eq!(
        resp,
        json!({ "error": "server_error", "error_description": "the message could not be sent" })
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        hg.log().contains("provider said no to +15555550100"),
        "{}",
        hg.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_timeout_is_504() {
    let up = Upstream::start();
    let hg = start(&up);
    let (status, resp) = post(&hg, Some(&bearer()), body("hang").to_string()).await;
    assert_eq!(status, 504);
    assert_eq!(resp["error"], "temporarily_unavailable");
}
