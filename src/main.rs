//! The `hookgate` binary: parse the command line, run it, and end. The subcommands live in
//! [`hookgate::cli`]; this is the one place a failure becomes an exit code.

use std::process::ExitCode;

use clap::Parser;
use hookgate::cli::{self, Cli};

fn main() -> ExitCode {
    match cli::run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
