//! `hookgate test`: run one hook file the way Auth0's Runner did, with the Runner's default
//! payload for its trigger, and print what it called back with.
//!
//! Owns: running a hook file as the Runner did, from the command line. The payload, secrets and
//! the run itself are the Runner's (`crate::hooks::runner`, which the management API's test
//! route uses too). Must not: write the hook file under test (it is read, never written).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use super::{parse_trigger, Failure};
use crate::config::Config;
use crate::config::{HooksConfig, Trigger};
use crate::engine::program::ProgramBuilder;
use crate::engine::{Engine, HookError, Script};
use crate::hooks::runner::{arguments, execute_blocking};

/// `hookgate test`, as the command line gives it: `trigger` and `config` as typed.
pub fn run(
    hook: &Path,
    payload: Option<&Path>,
    trigger: Option<&str>,
    config: Option<&Path>,
) -> Result<(), Failure> {
    let trigger = trigger.map(parse_trigger).transpose()?;
    let hooks = match config.map(Config::load).transpose() {
        Ok(c) => c.map(|c| c.hooks).unwrap_or_default(),
        Err(errors) => return Err(Failure::invalid(errors.to_string())),
    };
    super::init_logging(crate::config::LogFormat::Text);
    let v = run_test_as(hook, payload, trigger, &hooks)
        .map_err(|e| Failure::failed(format!("{e:#}")))?;
    println!("{}", serde_json::to_string_pretty(&v).expect("JSON prints"));
    Ok(())
}

/// `hookgate test <hook-file> [--payload file.json]`, trigger taken from the file's folder.
pub fn run_test(hook_file: &Path, payload: Option<&Path>) -> anyhow::Result<Value> {
    run_test_as(hook_file, payload, None, &HooksConfig::default())
}

/// `hookgate test` with an explicit trigger (for a file outside `<hooks>/<trigger-id>/`).
/// The payload is a JSON object keyed by argument name (`user`, `context`, ...); keys it leaves
/// out keep the trigger's default. Secrets come from the payload's `context.webtask.secrets`.
/// `hooks` supplies the sandbox limits and `[hooks.egress]` (allow-list, redirection), e.g. from
/// the configuration file. Runs on a private one-worker engine and returns once the hook's event
/// loop is done, as `node` would; must not be called from inside an async runtime.
pub fn run_test_as(
    hook_file: &Path,
    payload: Option<&Path>,
    trigger: Option<Trigger>,
    hooks: &HooksConfig,
) -> anyhow::Result<Value> {
    let folder = hook_file
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<Trigger>().ok());
    let trigger = trigger.or(folder).ok_or_else(|| {
        anyhow!(
            "cannot tell the trigger of {}: put it in a folder named after its trigger (e.g. hooks/credentials-exchange/) or name the trigger",
            hook_file.display()
        )
    })?;
    let root = match folder {
        Some(_) => hook_file.parent().and_then(Path::parent),
        None => hook_file.parent(),
    }
    .unwrap_or(Path::new("."));
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };

    let given = match payload {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the payload {}", path.display()))?;
            let given: Value = serde_json::from_str(&text)
                .with_context(|| format!("the payload {} is not JSON", path.display()))?;
            if !given.is_object() {
                bail!(
                    "the payload {} must be a JSON object keyed by argument name",
                    path.display()
                )
            }
            Some(given)
        }
    };
    // Secrets are the payload's own `context.webtask.secrets`, as the Runner's were.
    let args = arguments(trigger, given, &BTreeMap::new()).map_err(|e| anyhow!("{e}"))?;

    let program = ProgramBuilder::new(root)
        .build(hook_file)
        .map_err(|errors| {
            anyhow!(
                "{} cannot be loaded:\n  {}",
                hook_file.display(),
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            )
        })?;
    let cfg = HooksConfig {
        workers: Some(1),
        ..hooks.clone()
    };
    let name = format!(
        "{}/{}",
        trigger.id(),
        hook_file.file_stem().unwrap_or_default().to_string_lossy()
    );
    // The secrets are already in the arguments; an Action's adapter reads them there.
    let hook = crate::hooks::Hook::standalone(
        name,
        trigger,
        hook_file.to_path_buf(),
        Duration::from_millis(cfg.timeout_ms),
        BTreeMap::new(),
        program,
    )
    .probed(&cfg)
    .map_err(|problem| anyhow!("{problem}"))?;
    let script: Arc<Script> = Arc::clone(&hook);
    let engine = Engine::start(&cfg)?;
    let (result, _report) = execute_blocking(&engine, &script, args);
    engine.finish();
    match result {
        Ok(v) => Ok(v),
        Err(HookError::Failed(f)) => match f.user_message {
            Some(u) => bail!(
                "the hook called back with an error: {}: {} (user message: {u})",
                f.class,
                f.message
            ),
            None => bail!(
                "the hook called back with an error: {}: {}",
                f.class,
                f.message
            ),
        },
        Err(e) => bail!("{e}"),
    }
}
