//! The Runner that never saves: run a hook script given as text — not a file — with a payload,
//! on the engine, under the same sandbox limits and `[hooks.egress]` rules as real calls, and
//! say what it did: cb's value or error, its console lines, its outbound requests, how long it
//! took. Auth0's Runner, without its deploy-to-try step. `hookgate test` runs files through the
//! same steps ([`arguments`], [`execute_blocking`]).
//!
//! Owns: compiling a script in scratch (syntax errors with line and column; nothing is written
//! anywhere, the hooks folder is only read, for what the script `require`s), the payload (an
//! object keyed by argument name, over the trigger's default Runner payload from
//! [`super::contract`]), secrets (`context.webtask.secrets`), and the [`RunnerResult`].
//! Must not: record runs or count metrics (a try is not traffic), or touch the loaded
//! generation: the script gets a fresh id, so a fresh context on every worker.
//!
//! The management API mounts `POST /api/hookgate/hooks/test` on [`Runner::run`] (one
//! [`Runner`] per process, built from the `[hooks]` hookgate started with; body:
//! [`RunnerRequest`]; a [`RunnerError`] is a 400 with its text, `Unavailable` a 503; else 200
//! and the [`RunnerResult`], whatever the script's outcome). The Runner has an engine of its own,
//! so a script being tried never costs real requests their worker. Compiling a script that
//! requires large packages takes a while (it happens on the calling thread).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contract::{argument_names, default_payload, denies};
use crate::config::{HooksConfig, Trigger};
use crate::engine::program::{ProgramBuilder, ProgramError};
use crate::engine::{
    CallReport, ConsoleLine, Engine, HookError, OutboundRequest, Reporter, Script, Wait,
};
use crate::runs::{Outcome, RunError};

/// The largest script the Runner compiles.
pub const MAX_SOURCE_BYTES: usize = 1 << 20;

/// What to run. As JSON: `{"triggerId": "credentials-exchange", "script": "module.exports = ...",
/// "payload": {"scope": ["a"]}, "secrets": {"KEY": "value"}, "name": "add-claims"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerRequest {
    #[serde(rename = "triggerId", alias = "trigger")]
    pub trigger: Trigger,
    #[serde(alias = "source")]
    pub script: String,
    /// Arguments by name (`client`, `scope`, `user`, `context`...); those left out keep the
    /// trigger's default Runner payload.
    #[serde(default)]
    pub payload: Option<Value>,
    /// `context.webtask.secrets`, over those the payload's context names.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The file name the script stands under (`/hooks/<trigger>/<name>.js` for `__filename` and
    /// relative requires). Default `runner`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Why a script was not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunnerError {
    /// It does not compile, or requires what cannot be found: one line per problem,
    /// `<trigger>/<name>.js:line:col: ...`.
    #[error("the script cannot be loaded:\n  {}", .0.join("\n  "))]
    Compile(Vec<String>),
    #[error("the payload is invalid: {0}")]
    Payload(String),
    #[error("the script is {0} bytes; the Runner takes at most {MAX_SOURCE_BYTES}")]
    TooLarge(usize),
    #[error("invalid name `{0}`: use letters, digits, `-` and `_`")]
    Name(String),
    /// The Runner cannot run anything now (a 503).
    #[error("the Runner is unavailable: {0}")]
    Unavailable(String),
}

/// What the script did.
#[derive(Debug, Clone, Serialize)]
pub struct RunnerResult {
    pub outcome: Outcome,
    /// cb's value (absent when it failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// `PreUserRegistrationError`'s message for the user, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_message: Option<String>,
    pub console: Vec<ConsoleLine>,
    pub console_truncated: bool,
    pub requests: Vec<OutboundRequest>,
    pub requests_omitted: usize,
    /// Until cb.
    pub duration_ms: f64,
    /// Until the script's event loop was done (work after cb included).
    pub ran_ms: f64,
    pub cpu_ms: f64,
}

/// A compiled script and its arguments, ready to run.
pub struct Prepared {
    pub trigger: Trigger,
    script: Arc<Script>,
    args: Vec<Value>,
}

/// The arguments for `trigger` (cb excluded): the trigger's default Runner payload with
/// `payload`'s keys over it, and `secrets` over its `context.webtask.secrets`.
pub fn arguments(
    trigger: Trigger,
    payload: Option<Value>,
    secrets: &BTreeMap<String, String>,
) -> Result<Vec<Value>, RunnerError> {
    let mut values = default_payload(trigger);
    match payload {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (k, v) in given {
                values[k] = v;
            }
        }
        Some(_) => {
            return Err(RunnerError::Payload(
                "it must be a JSON object keyed by argument name".into(),
            ))
        }
    }
    if !secrets.is_empty() {
        match values.get_mut("context") {
            Some(Value::Object(context)) => {
                let webtask = context
                    .entry("webtask")
                    .or_insert_with(|| serde_json::json!({}));
                if !webtask.is_object() {
                    *webtask = serde_json::json!({});
                }
                let all = webtask
                    .as_object_mut()
                    .expect("made an object above")
                    .entry("secrets")
                    .or_insert_with(|| serde_json::json!({}));
                if !all.is_object() {
                    *all = serde_json::json!({});
                }
                let all = all.as_object_mut().expect("made an object above");
                for (k, v) in secrets {
                    all.insert(k.clone(), Value::String(v.clone()));
                }
            }
            _ => {
                return Err(RunnerError::Payload(
                    "secrets need `context` to be an object".into(),
                ))
            }
        }
    }
    Ok(argument_names(trigger)
        .iter()
        .map(|n| values.get(*n).cloned().unwrap_or(Value::Null))
        .collect())
}

/// Compile `req.script` as `<hooks folder>/<trigger>/<name>.js` without writing it (`hooks_dir`
/// is read for its requires only) and build its arguments; `timeout` is the hook timeout it
/// runs under.
pub fn prepare(
    hooks_dir: &Path,
    timeout: Duration,
    req: RunnerRequest,
) -> Result<Prepared, RunnerError> {
    if req.script.len() > MAX_SOURCE_BYTES {
        return Err(RunnerError::TooLarge(req.script.len()));
    }
    let name = req.name.unwrap_or_else(|| "runner".into());
    if name.is_empty()
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(RunnerError::Name(name));
    }
    let args = arguments(req.trigger, req.payload, &req.secrets)?;
    let relative = PathBuf::from(req.trigger.id()).join(format!("{name}.js"));
    let program = ProgramBuilder::new(hooks_dir)
        .build_source(&relative, &req.script)
        .map_err(|errors| {
            RunnerError::Compile(errors.iter().map(ProgramError::to_string).collect())
        })?;
    // Evaluated once as a generation's load does: a Hook, an Action (put behind its adapter),
    // or a module that cannot work (refused with its line).
    let probe_cfg = HooksConfig {
        timeout_ms: timeout.as_millis() as u64,
        ..HooksConfig::default()
    };
    let hook = super::Hook::standalone(
        format!("{}/{name}", req.trigger.id()),
        req.trigger,
        hooks_dir.join(&relative),
        timeout,
        BTreeMap::new(),
        program,
    )
    .probed_for_runner(&probe_cfg)
    .map_err(|problem| RunnerError::Compile(vec![problem]))?;
    let script: Arc<Script> = Arc::clone(&hook);
    Ok(Prepared {
        trigger: req.trigger,
        script,
        args,
    })
}

/// Run a prepared script on `engine` (its workers, limits and egress rules); returns once its
/// event loop is done (bounded by its timeout), as `node` would.
pub async fn execute(engine: &Engine, p: Prepared) -> (Result<Value, HookError>, CallReport) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reporter = Reporter::new(move |r| {
        let _ = tx.send(r);
    });
    let settled = engine
        .call_with_report(
            &p.script,
            p.args,
            "hookgate-runner",
            Wait::Sleep,
            Some(reporter),
        )
        .await;
    let report = rx.await.unwrap_or_else(|_| lost(&settled));
    (settled, report)
}

/// [`execute`] for a thread outside any async runtime (`hookgate test`).
pub fn execute_blocking(
    engine: &Engine,
    script: &Arc<Script>,
    args: Vec<Value>,
) -> (Result<Value, HookError>, CallReport) {
    let (tx, rx) = std::sync::mpsc::channel();
    let reporter = Reporter::new(move |r| {
        let _ = tx.send(r);
    });
    let settled = engine.call_blocking_with_report(script, args, "hookgate-test", Some(reporter));
    let report = rx.recv().unwrap_or_else(|_| lost(&settled));
    (settled, report)
}

impl Prepared {
    /// The compiled script and its arguments, for [`execute_blocking`].
    pub fn into_parts(self) -> (Arc<Script>, Vec<Value>) {
        (self.script, self.args)
    }
}

/// A report standing in for one that never came (the reporter is always called; defensive).
fn lost(settled: &Result<Value, HookError>) -> CallReport {
    CallReport {
        started: true,
        result: settled.as_ref().map(|_| ()).map_err(Clone::clone),
        answered_in: Duration::ZERO,
        ran: Duration::ZERO,
        cpu: Duration::ZERO,
        console: Vec::new(),
        console_truncated: false,
        requests: Vec::new(),
        requests_omitted: 0,
    }
}

/// The Runner's answer from a call's result and report.
pub fn result(trigger: Trigger, settled: Result<Value, HookError>, r: CallReport) -> RunnerResult {
    let ms = |d: Duration| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    let unit = settled.as_ref().map(|_| ()).map_err(Clone::clone);
    let user_message = match &settled {
        Err(HookError::Failed(f)) => f.user_message.clone(),
        _ => None,
    };
    RunnerResult {
        outcome: Outcome::of(&unit, |f| denies(trigger, &f.class)),
        error: settled.as_ref().err().map(RunError::of),
        response: settled.ok(),
        user_message,
        console: r.console,
        console_truncated: r.console_truncated,
        requests: r.requests,
        requests_omitted: r.requests_omitted,
        duration_ms: ms(r.answered_in),
        ran_ms: ms(r.ran),
        cpu_ms: ms(r.cpu),
    }
}

/// Compile and run `req` on `engine` with the hooks folder and timeout of `hooks` (`base_dir`:
/// the configuration file's folder, against which `[hooks] dir` is resolved).
pub async fn run(
    engine: &Engine,
    hooks: &HooksConfig,
    base_dir: &Path,
    req: RunnerRequest,
) -> Result<RunnerResult, RunnerError> {
    // Compiling (up to 1 MiB and its requires) and the load-time probe (up to 2 s) block: off
    // the async threads, and two at a time, so a burst of scripts that loop at the top level
    // cannot stall the management API.
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|_| RunnerError::Unavailable("the Runner has stopped".into()))?;
    let dir = base_dir.join(&hooks.dir);
    let timeout = Duration::from_millis(hooks.timeout_ms);
    let prepared = tokio::task::spawn_blocking(move || prepare(&dir, timeout, req))
        .await
        .map_err(|e| RunnerError::Unavailable(format!("preparing the script failed: {e}")))??;
    let trigger = prepared.trigger;
    let (settled, report) = execute(engine, prepared).await;
    Ok(result(trigger, settled, report))
}

/// The Runner as a running hookgate offers it: scripts run on an engine of its own (one worker,
/// started at the first run, built from the same `[hooks]` settings: the same sandbox limits and
/// `[hooks.egress]` rules), so a script being tried — a CPU loop, a memory hog — is stopped at
/// its timeout without recycling a worker that real requests share (a recycled worker answers
/// the calls it held as crashed).
pub struct Runner {
    boot: HooksConfig,
    engine: std::sync::Mutex<Option<Engine>>,
}

impl Runner {
    /// `hooks`: the `[hooks]` hookgate started with (its sandbox and egress need a restart).
    pub fn new(hooks: &HooksConfig) -> Runner {
        Runner {
            boot: HooksConfig {
                workers: Some(1),
                max_workers: Some(2),
                ..hooks.clone()
            },
            engine: std::sync::Mutex::new(None),
        }
    }

    /// [`run`] on the Runner's own engine, with `hooks` in force now (its folder and timeout).
    pub async fn run(
        &self,
        hooks: &HooksConfig,
        base_dir: &Path,
        req: RunnerRequest,
    ) -> Result<RunnerResult, RunnerError> {
        let engine = self.engine()?;
        run(&engine, hooks, base_dir, req).await
    }

    fn engine(&self) -> Result<Engine, RunnerError> {
        let mut slot = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(engine) = slot.as_ref() {
            return Ok(engine.clone());
        }
        let engine = Engine::start(&self.boot)
            .map_err(|e| RunnerError::Unavailable(format!("cannot start its engine: {e:#}")))?;
        *slot = Some(engine.clone());
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_overrides_the_default_by_argument_and_secrets_reach_the_context() {
        let secrets = BTreeMap::from([("KEY".to_string(), "v".to_string())]);
        let args = arguments(
            Trigger::CredentialsExchange,
            Some(serde_json::json!({"scope": ["x"]})),
            &secrets,
        )
        .unwrap();
        assert_eq!(args.len(), 4);
        assert_eq!(args[1], serde_json::json!(["x"]));
        assert_eq!(args[0]["name"], "Test Application");
        assert_eq!(args[3]["webtask"]["secrets"]["KEY"], "v");
        assert!(matches!(
            arguments(
                Trigger::CredentialsExchange,
                Some(serde_json::json!([1])),
                &secrets
            ),
            Err(RunnerError::Payload(_))
        ));
    }

    #[test]
    fn a_script_that_does_not_compile_is_refused_with_its_line_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let req = RunnerRequest {
            trigger: Trigger::CredentialsExchange,
            script: "module.exports = function (a, b, c, d, cb) {\n  cb(null, {;\n};".into(),
            payload: None,
            secrets: BTreeMap::new(),
            name: None,
        };
        let Err(RunnerError::Compile(problems)) = prepare(dir.path(), Duration::from_secs(1), req)
        else {
            panic!("compiled")
        };
        assert!(
            problems[0].starts_with("credentials-exchange/runner.js:2:"),
            "{problems:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
