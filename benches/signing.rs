//! What one token signature costs hookgate (aws-lc, through `SigningKey::sign`, base64 and JSON
//! included) beside `openssl speed` on the same machine, the floor `benches/compare.py` measures
//! hookgate against. At RS256 the signature is most of a token exchange, so the two libraries'
//! difference shows up whole in the exchange's cost.
//!
//!   cargo bench --bench signing

use std::process::Command;
use std::time::Instant;

use hookgate::token::keys::{generate_pem, Alg, SigningKey};
use serde_json::json;

/// Median over `batches` of the mean time of one signature in a batch of `n`, in µs.
fn sign_us(key: &SigningKey, n: usize, batches: usize) -> f64 {
    let claims = json!({ "iss": "https://idp.example.com/", "sub": "m2m", "aud": "https://api",
                         "iat": 1_700_000_000, "exp": 1_700_086_400, "scope": "read:users",
                         "https://example.com/tier": "gold", "https://example.com/region": "eu" });
    for _ in 0..n / 10 {
        key.sign(Some("at+jwt"), &claims).expect("sign");
    }
    let mut each: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                key.sign(Some("at+jwt"), &claims).expect("sign");
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    each.sort_by(f64::total_cmp);
    each[batches / 2]
}

/// Signatures per second on one core from `openssl speed`, if openssl is installed.
fn openssl_signs_per_sec(arg: &str, row: &str) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", arg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.trim_start().starts_with(row))?;
    // "rsa 2048 bits 0.000273s 0.000018s 3664.0 54855.0": signs/s is the second-last column.
    let cols: Vec<&str> = line.split_whitespace().collect();
    cols.get(cols.len().checked_sub(2)?)?.parse().ok()
}

fn main() {
    println!("| alg | hookgate (aws-lc) µs/signature | openssl speed µs/signature | hookgate ÷ openssl time |");
    println!("|---|---|---|---|");
    for (alg, n, arg, row) in [
        (Alg::RS256, 400, "rsa2048", "rsa 2048 bits"),
        (Alg::ES256, 5000, "ecdsap256", "256 bits ecdsa (nistp256)"),
        (Alg::EdDSA, 5000, "ed25519", "253 bits EdDSA (Ed25519)"),
    ] {
        let pem = generate_pem(alg).expect("generate a key");
        let key = SigningKey::from_pem(pem.as_bytes()).expect("load the key");
        let ours = sign_us(&key, n, 5);
        let theirs = openssl_signs_per_sec(arg, row).map(|per_sec| 1e6 / per_sec);
        println!(
            "| {} | {ours:.1} | {} | {} |",
            alg.name(),
            theirs.map_or("–".into(), |t| format!("{t:.1}")),
            theirs.map_or("–".into(), |t| format!("{:.2}×", ours / t)),
        );
    }
}
