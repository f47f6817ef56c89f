//! The `hookgate` command line. pingora's own option parsing is never used: hookgate's flags are
//! its own, and pingora is configured from hookgate.toml.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::config::{Config, LogFormat};

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
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!(
            "hookgate: {} problem(s) in {}; nothing was started",
            errors.0.len(),
            path.display()
        );
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match load(&config) {
            Ok(c) => {
                println!(
                    "{}: ok ({} route(s), upstream {})",
                    config.display(),
                    c.routes.len(),
                    c.upstream.address
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Serve { config } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.server.log_format);
            match hookgate::server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookgate: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
