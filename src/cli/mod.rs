//! The `hookgate` command line: its arguments (clap) and one file per subcommand group. pingora's
//! own option parsing is never used: hookgate's flags are its own, and pingora is configured from
//! hookgate.toml.
//!
//! Owns: the subcommands, what they print, and how each failure ends ([`Failure`]: the text and
//! the exit code; `main` prints it, the only exit). Must not: validate configuration, compile
//! hooks or serve anything itself (`config`, `reload::load` and `server` do); a subcommand is a
//! thin call into the layers below and its output.
//!
//! | subcommand                   | file         |
//! |------------------------------|--------------|
//! | `serve`                      | `serve.rs`   |
//! | `check`                      | `check.rs`   |
//! | `test`                       | `test.rs`    |
//! | `new`                        | `new.rs`     |
//! | `migrate`                    | `migrate.rs` |
//! | `keys generate`              | `keys.rs`    |
//! | `outbox list\|retry\|drop`   | `outbox.rs`  |
//! | `hooks …`, `hooks secrets …` | `hooks.rs`   |
//! | `logs`                       | `logs.rs`    |
//!
//! `hooks`, `logs` and `outbox` reach a running hookgate through `remote.rs` (its management
//! API), and work on the files when none runs (`logs` needs one).

pub mod check;
pub mod hooks;
pub mod keys;
pub mod logs;
pub mod migrate;
pub mod new;
pub mod outbox;
mod remote;
pub mod serve;
pub mod test;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::LogFormat;
use crate::config::Trigger;
use hooks::HooksCommand;
use keys::KeysCommand;
use outbox::OutboxCommand;

pub use new::write_starter;
pub use test::{run_test, run_test_as};

#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about = "Run Auth0 Hooks unmodified in front of the identity server you already have"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Write Auth0's Actions starter (`exports.onExecute<Trigger> = async (event, api) => {}`)
        /// instead of the Hook starter.
        #[arg(long)]
        actions: bool,
    },
    /// Write the Auth0 Action equivalent of a Hook (stdout, or -o FILE), then run both on the
    /// same payloads and compare: exit 0 same result, 1 a field differs, 2 not convertible.
    Migrate {
        /// The Hook file; its folder names the trigger (hooks/<trigger-id>/<name>.js).
        hook: PathBuf,
        /// Write the Action to this file instead of stdout (the table then goes to stdout).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite the -o file if it exists.
        #[arg(long)]
        force: bool,
        /// The trigger, for a file outside a trigger folder.
        #[arg(long)]
        trigger: Option<String>,
        /// Also compare on this payload (as `hookgate test --payload`); repeatable.
        #[arg(long)]
        payload: Vec<PathBuf>,
        /// Take the sandbox limits and `[hooks.egress]` from this configuration file.
        #[arg(short, long, env = "HOOKGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Manage hookgate's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect and manage the outbox of post-events (post-user-registration, ...).
    ///
    /// While hookgate runs with its management API, through that API (`read:outbox`,
    /// `update:outbox`): the running process holds the outbox file, and delivers what `retry`
    /// made due at once. Otherwise on the file itself; a hookgate running without the API holds
    /// the file (redb lets one process open it), so the commands then fail with a message and
    /// change nothing.
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
    /// List, enable, disable, remove and order hooks, and manage their secrets: through the
    /// running hookgate's management API when one answers, on the files otherwise.
    Hooks {
        #[arg(
            short,
            long,
            global = true,
            default_value = "config/hookgate.toml",
            env = "HOOKGATE_CONFIG"
        )]
        config: PathBuf,
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// What hooks did (outcome, duration, console lines, outbound requests, errors): the run
    /// records of the running hookgate, oldest first; `--follow` goes on with the live tail.
    Logs {
        #[arg(
            short,
            long,
            default_value = "config/hookgate.toml",
            env = "HOOKGATE_CONFIG"
        )]
        config: PathBuf,
        /// Keep printing records as hooks run (resumes where it stopped if the connection drops).
        #[arg(short, long)]
        follow: bool,
        /// Only this hook's records: its id, name or <trigger>/<name>.
        #[arg(long)]
        hook: Option<String>,
        /// One JSON object per record and line.
        #[arg(long)]
        json: bool,
        /// How many of the latest records to print first (the API caps it at 1000).
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: usize,
    },
}

/// Why a command ended without doing its work: what to print on stderr (already worded to say
/// what to do next) and the exit code. `main` prints it; nothing else in hookgate exits for the
/// command line.
#[derive(Debug)]
pub struct Failure {
    /// Printed as it is, on stderr.
    pub message: String,
    /// 2: the input (configuration, an argument) is unusable; 1: the command failed doing its work.
    pub code: u8,
}

impl Failure {
    /// The input is unusable (exit code 2); `message` is printed as it is.
    pub fn invalid(message: String) -> Failure {
        Failure { message, code: 2 }
    }

    /// The command failed doing its work (exit code 1): printed as `hookgate: <why>`.
    pub fn failed(why: String) -> Failure {
        Failure {
            message: format!("hookgate: {why}"),
            code: 1,
        }
    }
}

/// Run one parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { config } => check::run(&config),
        Command::Test {
            hook,
            payload,
            trigger,
            config,
        } => test::run(
            &hook,
            payload.as_deref(),
            trigger.as_deref(),
            config.as_deref(),
        ),
        Command::New {
            trigger,
            name,
            dir,
            actions,
        } => new::run(&trigger, &name, &dir, actions),
        Command::Migrate {
            hook,
            output,
            force,
            trigger,
            payload,
            config,
        } => migrate::run(migrate::Args {
            hook: &hook,
            output: output.as_deref(),
            force,
            trigger: trigger.as_deref(),
            payloads: &payload,
            config: config.as_deref(),
        }),
        Command::Keys { command } => keys::run(command),
        Command::Outbox { config, command } => outbox::run(&config, command),
        Command::Hooks { config, command } => hooks::run(&config, command),
        Command::Logs {
            config,
            follow,
            hook,
            json,
            limit,
        } => logs::run(&config, follow, hook.as_deref(), json, limit),
        Command::Serve { config } => serve::run(&config),
    }
}

/// A trigger id as typed, or what the valid ones are.
fn parse_trigger(s: &str) -> Result<Trigger, Failure> {
    s.parse::<Trigger>()
        .map_err(|e| Failure::invalid(format!("hookgate: {e}")))
}

/// Logs to stderr in the configured format (`[server] log_format`), filtered by `RUST_LOG`.
pub fn init_logging(format: LogFormat) {
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
