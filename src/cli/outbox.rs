//! `hookgate outbox list|retry|drop`: the dead letters and pending post-events. Through the
//! running hookgate's management API when one answers (it holds the outbox file open), on the file
//! itself when hookgate is stopped; with `backend = "redis"`, on the shared stream when no API
//! answers.
//!
//! Owns: the subcommand's arguments and what it prints. Must not: know the file's schema or the
//! retry policy (`crate::outbox` does), or run hooks (a started hookgate delivers what `retry`
//! made due).

use clap::Subcommand;

use reqwest::Method;
use serde_json::Value;

use super::remote::Remote;
use super::Failure;
use crate::config::Config;
use crate::outbox::Outbox;

/// `hookgate outbox <command>`: prints what it did, or fails with exit code 1.
pub fn run(config: &std::path::Path, command: OutboxCommand) -> Result<(), Failure> {
    let c = Config::load(config).map_err(|e| Failure::failed(e.to_string()))?;
    let scopes: &[&str] = match command {
        OutboxCommand::List { .. } => &["read:outbox"],
        _ => &["read:outbox", "update:outbox"],
    };
    let msg = match Remote::find(&c, scopes)? {
        Some(remote) => api_command(&remote, command)?,
        None => outbox_command(&c, command).map_err(|e| {
            // A running hookgate holds the file: say how to reach its outbox while it runs.
            if c.admin.tokens.is_empty() && e.contains("stop hookgate first") {
                Failure::failed(format!("{e}; or give it an [[admin.token]] with the scopes read:outbox and update:outbox, and `hookgate outbox` goes through its management API while it runs"))
            } else {
                Failure::failed(e)
            }
        })?,
    };
    println!("{msg}");
    Ok(())
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List pending events and dead letters (sequence number, state, attempts, last error).
    List {
        /// One JSON object per line, with the hook arguments.
        #[arg(long)]
        json: bool,
    },
    /// Make events due now with fresh attempts (dead letters go back to pending).
    Retry {
        /// Sequence numbers from `list`.
        seqs: Vec<u64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "seqs")]
        all_dead: bool,
    },
    /// Delete events for good; their hooks will not run.
    Drop {
        seqs: Vec<u64>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "seqs")]
        all_dead: bool,
    },
}

/// Which events a retry or drop names: these sequence numbers, or (`None`) every dead letter.
fn choose(seqs: &[u64], all_dead: bool) -> Result<Option<Vec<u64>>, String> {
    match (seqs.is_empty(), all_dead) {
        (true, false) => Err("name events by sequence number, or pass --all-dead".into()),
        (_, true) => Ok(None),
        (false, false) => Ok(Some(seqs.to_vec())),
    }
}

/// `list`'s output from events as JSON (the file's `Stored`, or the API's answer, alike): one
/// tab-separated line per event and a count, or one JSON object per line.
fn list_text(all: &[Value], json: bool, whence: &str) -> String {
    let mut out = String::new();
    for s in all {
        if json {
            out.push_str(&s.to_string());
        } else {
            let e = &s["event"];
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\tattempts={}\t{}",
                s["seq"],
                s["state"].as_str().unwrap_or("-"),
                e["trigger"].as_str().unwrap_or("-"),
                e["id"].as_str().unwrap_or("-"),
                e["attempts"],
                e["last_error"].as_str().unwrap_or("-")
            ));
        }
        out.push('\n');
    }
    if !json {
        let dead = all.iter().filter(|s| s["state"] == "dead").count();
        out.push_str(&format!(
            "{} pending, {} dead ({whence})",
            all.len() - dead,
            dead
        ));
    }
    out.trim_end().to_string()
}

/// The same commands through the running hookgate's API.
fn api_command(remote: &Remote, command: OutboxCommand) -> Result<String, Failure> {
    let list = |state: &str| -> Result<Vec<Value>, Failure> {
        let v = remote.call(Method::GET, &format!("/api/hookgate/outbox{state}"), None)?;
        Ok(v.as_array().cloned().unwrap_or_default())
    };
    let each = |seqs: &[u64], all_dead: bool, op: &dyn Fn(u64) -> Result<(), Failure>| {
        let which = match choose(seqs, all_dead).map_err(Failure::failed)? {
            Some(seqs) => seqs,
            None => list("?state=dead")?
                .iter()
                .filter_map(|s| s["seq"].as_u64())
                .collect(),
        };
        for (done, seq) in which.iter().enumerate() {
            op(*seq).map_err(|f| {
                Failure::failed(format!(
                    "{} ({done} event(s) done before it)",
                    f.message.trim_start_matches("hookgate: ")
                ))
            })?;
        }
        Ok::<usize, Failure>(which.len())
    };
    match command {
        OutboxCommand::List { json } => Ok(list_text(&list("")?, json, &remote.describe())),
        OutboxCommand::Retry { seqs, all_dead } => {
            let n = each(&seqs, all_dead, &|seq| {
                remote.call(
                    Method::POST,
                    &format!("/api/hookgate/outbox/{seq}/retry"),
                    None,
                )?;
                Ok(())
            })?;
            Ok(format!(
                "{n} event(s) due now; {} delivers them",
                remote.describe()
            ))
        }
        OutboxCommand::Drop { seqs, all_dead } => {
            let n = each(&seqs, all_dead, &|seq| {
                remote.call(Method::DELETE, &format!("/api/hookgate/outbox/{seq}"), None)?;
                Ok(())
            })?;
            Ok(format!("{n} event(s) deleted"))
        }
    }
}

fn outbox_command(c: &Config, command: OutboxCommand) -> Result<String, String> {
    // The Redis backend is shared: no running hookgate holds it, so it is used directly.
    let outbox = match c.outbox.backend {
        crate::config::outbox::Backend::Redis => {
            let o = Outbox::closed(&c.outbox);
            o.ensure_open().map_err(|e| format!("{e:#}"))?;
            o
        }
        crate::config::outbox::Backend::Redb => {
            Outbox::open(&c.outbox.path).map_err(|e| format!("{e:#}"))?
        }
    };
    let whence = match outbox.redis() {
        Some(r) => format!("Redis stream {}", r.stream()),
        None => outbox.path().display().to_string(),
    };
    match command {
        OutboxCommand::List { json } => {
            let all: Vec<Value> = outbox
                .list()
                .map_err(|e| format!("{e:#}"))?
                .iter()
                .map(|s| serde_json::to_value(s).expect("JSON prints"))
                .collect();
            Ok(list_text(&all, json, &whence))
        }
        OutboxCommand::Retry { seqs, all_dead } => {
            let which = choose(&seqs, all_dead)?;
            let n = outbox
                .retry(which.as_deref())
                .map_err(|e| format!("{e:#}"))?;
            Ok(format!(
                "{n} event(s) due now; a started hookgate delivers them"
            ))
        }
        OutboxCommand::Drop { seqs, all_dead } => {
            let which = choose(&seqs, all_dead)?;
            let n = outbox
                .drop_events(which.as_deref())
                .map_err(|e| format!("{e:#}"))?;
            Ok(format!("{n} event(s) deleted"))
        }
    }
}
