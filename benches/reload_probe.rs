//! Drives hot reloads for `benches/reload.sh`.
//!
//!   reload-probe latency URL HOOK_FILE N     write N versions of a credentials-exchange hook
//!                                            (in-place writes and atomic renames, alternately),
//!                                            and after each time how long until a token exchange
//!                                            answers with the new version's claim; prints
//!                                            p50/p90/p99/max in ms
//!   reload-probe churn HOOK_FILE SECS EVERY_MS   write a new version every EVERY_MS for SECS
//!                                            (every fifth one broken), no requests
//!
//! The hook stamps `https://example.com/v` into the re-signed token; the token's payload is read
//! without verification (only the version matters here).

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;

fn hook(version: &str) -> String {
    format!(
        "module.exports = function (client, scope, audience, context, cb) {{\n\
         \x20 cb(null, {{ scope: scope, 'https://example.com/v': '{version}' }});\n}};\n"
    )
}

fn save(path: &Path, body: &str, atomic: bool) {
    if atomic {
        let tmp = path.with_extension("js.tmp");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    } else {
        std::fs::write(path, body).unwrap();
    }
}

async fn version(c: &reqwest::Client, url: &str) -> String {
    let Ok(resp) = c
        .post(url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "m2m-post"),
            ("client_secret", "m2m-post-secret"),
            ("scope", "read:users"),
        ])
        .send()
        .await
    else {
        return "error".into();
    };
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let payload = body["access_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or_default();
    let claims: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    claims["https://example.com/v"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("latency") => {
            let (url, file, n) = (&args[1], Path::new(&args[2]), args[3].parse().unwrap());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(latency(url, file, n));
        }
        Some("churn") => {
            let file = Path::new(&args[1]);
            let secs: u64 = args[2].parse().unwrap();
            let every = Duration::from_millis(args[3].parse().unwrap());
            let end = Instant::now() + Duration::from_secs(secs);
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                let body = if i % 5 == 0 {
                    "module.exports = function (client, scope, audience, context, cb) {\n  var x = ;\n};\n".to_string()
                } else {
                    hook(&format!("churn-{i}"))
                };
                save(file, &body, i % 2 == 0);
                std::thread::sleep(every);
            }
            println!("{i} writes");
        }
        _ => {
            eprintln!(
                "usage: reload-probe latency URL HOOK_FILE N | churn HOOK_FILE SECS EVERY_MS"
            );
            std::process::exit(2);
        }
    }
}

async fn latency(url: &str, file: &Path, n: usize) {
    let c = reqwest::Client::new();
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let want = format!("lat-{i}");
        save(file, &hook(&want), i % 2 == 1);
        let start = Instant::now();
        loop {
            if version(&c, url).await == want {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("version {want} never answered");
            }
        }
        took.push(start.elapsed().as_secs_f64() * 1000.0);
        // Let the watcher settle so each measurement starts from quiet.
        std::thread::sleep(Duration::from_millis(30));
    }
    took.sort_by(f64::total_cmp);
    println!(
        "write-to-answer over {n} reloads: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&took, 0.5),
        percentile(&took, 0.9),
        percentile(&took, 0.99),
        took[took.len() - 1]
    );
}
