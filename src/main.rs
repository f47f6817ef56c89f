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
    /// Manage hookgate's signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
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
