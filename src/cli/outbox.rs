//! `hookgate outbox list|retry|drop`: the dead letters and pending post-events, managed while
//! hookgate is stopped.
//!
//! Owns: the subcommand's arguments and what it prints. Must not: know the file's schema or the
//! retry policy (`crate::outbox` does), or run hooks (a started hookgate delivers what `retry`
//! made due).

use clap::Subcommand;

use super::Failure;
use crate::config::Config;
use crate::outbox::{Outbox, State};

/// `hookgate outbox <command>`: prints what it did, or fails with exit code 1.
pub fn run(config: &std::path::Path, command: OutboxCommand) -> Result<(), Failure> {
    let msg = outbox_command(config, command).map_err(Failure::failed)?;
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

fn outbox_command(config: &std::path::Path, command: OutboxCommand) -> Result<String, String> {
    let c = Config::load(config).map_err(|e| e.to_string())?;
    let outbox = Outbox::open(&c.outbox.path).map_err(|e| format!("{e:#}"))?;
    let choose = |seqs: &[u64], all_dead: bool| -> Result<Option<Vec<u64>>, String> {
        match (seqs.is_empty(), all_dead) {
            (true, false) => Err("name events by sequence number, or pass --all-dead".into()),
            (_, true) => Ok(None),
            (false, false) => Ok(Some(seqs.to_vec())),
        }
    };
    match command {
        OutboxCommand::List { json } => {
            let all = outbox.list().map_err(|e| format!("{e:#}"))?;
            let mut out = String::new();
            for s in &all {
                if json {
                    out.push_str(&serde_json::to_string(s).expect("JSON prints"));
                } else {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\tattempts={}\t{}",
                        s.seq,
                        match s.state {
                            State::Pending => "pending",
                            State::Dead => "dead",
                        },
                        s.event.trigger,
                        s.event.id,
                        s.event.attempts,
                        s.event.last_error.as_deref().unwrap_or("-")
                    ));
                }
                out.push('\n');
            }
            if !json {
                let dead = all.iter().filter(|s| s.state == State::Dead).count();
                out.push_str(&format!(
                    "{} pending, {} dead ({})",
                    all.len() - dead,
                    dead,
                    outbox.path().display()
                ));
            }
            Ok(out.trim_end().to_string())
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
