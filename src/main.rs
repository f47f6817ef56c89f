//! The `hookgate` command line. pingora's own option parsing is never used: hookgate's flags are
//! its own, and pingora is configured from hookgate.toml.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::config::{Config, LogFormat};
use hookgate::hooks::{cli as hooks_cli, Trigger};
use hookgate::reload::{self, Loaded};
use hookgate::server;

#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about = "Run Auth0 Hooks unmodified in front of the identity server you already have"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the proxy.
    Serve {
        /// The configuration file.
        #[arg(
            short,
            long,
            default_value = "config/hookgate.toml",
            env = "HOOKGATE_CONFIG"
        )]
        config: PathBuf,
    },
    /// Validate the configuration; exits non-zero and names file, line and key on a problem.
    Check {
        #[arg(
            short,
            long,
            default_value = "config/hookgate.toml",
            env = "HOOKGATE_CONFIG"
        )]
        config: PathBuf,
    },
    /// Run one hook file the way Auth0's Runner did, and print its response JSON.
    Test {
        /// The hook file; its folder names the trigger (hooks/<trigger-id>/<name>.js).
        hook: PathBuf,
        /// A JSON object keyed by argument name (`user`, `context`, ...); what it leaves out keeps
        /// the trigger's default payload.
        #[arg(long)]
        payload: Option<PathBuf>,
        /// The trigger, for a file outside a trigger folder.
        #[arg(long)]
        trigger: Option<String>,
        /// Take the sandbox limits and `[hooks.egress]` (allow-list, redirection to local stub
        /// servers) from this configuration file.
        #[arg(short, long, env = "HOOKGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Write Auth0's starter code for a trigger to hooks/<trigger>/<name>.js.
    New {
        /// credentials-exchange, pre-user-registration, post-user-registration,
        /// post-change-password or send-phone-message.
        trigger: String,
        name: String,
        /// The hooks folder.
        #[arg(long, default_value = "hooks")]
        dir: PathBuf,
    },
    /// Manage hookgate's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect and manage the outbox of post-events (post-user-registration, ...).
    ///
    /// Works on the outbox file while hookgate is stopped: redb lets one process at a time open
    /// the file, and a running hookgate holds it, so these commands then fail with a message and
    /// change nothing. A running hookgate delivers pending events itself; stop it to manage dead
    /// letters, then start it again: what `retry` made pending is delivered at once.
    Outbox {
        #[arg(
            short,
            long,
            global = true,
            default_value = "config/hookgate.toml",
            env = "HOOKGATE_CONFIG"
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
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
    use hookgate::outbox::{Outbox, State};
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

#[derive(Subcommand)]
enum KeysCommand {
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
    use hookgate::token::{keys, Alg, SigningKey};
    use std::io::Write;
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

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or collector would get escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// The configuration and everything it names (hooks compiled, keys parsed), or exit code 2 with
/// every problem printed, one per line, each saying what to set. A first run meets several at
/// once (an unset variable, a missing key file, secrets), so the check does not stop at the
/// configuration file's own problems: when they leave it readable, what it names is checked too.
fn load(path: &std::path::Path) -> Result<(Config, Loaded), ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let config = match Config::load(path) {
        Ok(c) => Some(c),
        Err(errors) => {
            problems.extend(errors.0.iter().map(ToString::to_string));
            None
        }
    };
    // Only to look further: a copy read with a stand-in for every unset variable (the listen and
    // upstream overrides excepted: a stand-in there would be a problem of its own). Never served.
    let stand_in = match &config {
        Some(_) => None,
        None => std::fs::read_to_string(path).ok().and_then(|text| {
            let env = |k: &str| {
                std::env::var(k)
                    .ok()
                    .or_else(|| (!k.starts_with("HOOKGATE_")).then(|| "unset".to_string()))
            };
            Config::parse(path, &text, &env).ok()
        }),
    };
    match config.as_ref().or(stand_in.as_ref()).map(reload::load) {
        Some(Ok(loaded)) => {
            if let Some(config) = config {
                return Ok((config, loaded));
            }
        }
        Some(Err(more)) => {
            problems.extend(more.iter().map(|p| format!("{}: {p}", path.display())));
        }
        None => {}
    }
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!(
        "hookgate: {} problem(s) in {} and what it names; nothing was started",
        problems.len(),
        path.display()
    );
    Err(ExitCode::from(2))
}

fn parse_trigger(s: &str) -> Result<Trigger, ExitCode> {
    s.parse::<Trigger>().map_err(|e| {
        eprintln!("hookgate: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok((c, loaded)) => {
                for w in &loaded.generation.warnings {
                    eprintln!("warning: {w}");
                }
                println!(
                    "{}: ok ({} route(s), {} hook(s) compiled, upstream {})",
                    config.display(),
                    c.routes.len(),
                    loaded.generation.all_hooks().count(),
                    c.upstream.address
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Test {
            hook,
            payload,
            trigger,
            config,
        } => {
            let trigger = match trigger.as_deref().map(parse_trigger).transpose() {
                Ok(t) => t,
                Err(code) => return code,
            };
            let hooks = match config.as_deref().map(Config::load).transpose() {
                Ok(c) => c.map(|c| c.hooks).unwrap_or_default(),
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::from(2);
                }
            };
            init_logging(LogFormat::Text);
            match hooks_cli::run_test_as(&hook, payload.as_deref(), trigger, &hooks) {
                Ok(v) => {
                    println!("{}", serde_json::to_string_pretty(&v).expect("JSON prints"));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hookgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::New { trigger, name, dir } => {
            let trigger = match parse_trigger(&trigger) {
                Ok(t) => t,
                Err(code) => return code,
            };
            match hooks_cli::write_starter(&dir, trigger, &name) {
                Ok(path) => {
                    println!("wrote {}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hookgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys {
            command: KeysCommand::Generate { alg, out },
        } => match generate_key(&alg, &out) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hookgate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Outbox { config, command } => match outbox_command(&config, command) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hookgate: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config } => {
            let (config, loaded) = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.server.log_format);
            match server::run(config, loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
