//! `hookgate migrate HOOK.js`: write the Auth0 Action equivalent of a Hook, then run both on the
//! same payloads and show whether they give the same result.
//!
//! Where the Action goes: stdout (the comparison table then goes to stderr, so
//! `hookgate migrate h.js > h.action.js` works), or `-o FILE`, never over an existing file unless
//! `--force`. It is not written into a trigger folder by default: there it would run beside the
//! Hook it copies. Exit codes: 0 the two agree on every payload (outbound requests included)
//! and both succeed on at least one, 1 they differ (the fields are named) or both fail on every
//! payload, 2 the Hook could not be converted (the lines are named) or an input is unusable.
//! Both runs are real: unless `--allow-network`, egress is limited to the hosts
//! `[hooks.egress.redirect]` maps to stubs, so side effects do not happen twice.
//!
//! Owns: reading the Hook, writing the Action, running both (the trigger's default payload, as
//! `hookgate test` uses, and each `--payload`) on a private one-worker engine, and the table.
//! The conversion and what a comparison looks at are `hooks::actions::migrate`'s. Must not:
//! write the Hook, or anything but the one output file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{parse_trigger, Failure};
use crate::config::{Config, HooksConfig, Trigger};
use crate::engine::program::ProgramBuilder;
use crate::engine::{Engine, HookError, Script};
use crate::hooks::actions::migrate::{convert, differences, outcome};
use crate::hooks::runner::{arguments, execute_blocking};
use crate::hooks::{Hook, Kind};

/// `hookgate migrate`, as the command line gives it.
pub struct Args<'a> {
    pub hook: &'a Path,
    pub output: Option<&'a Path>,
    pub force: bool,
    pub trigger: Option<&'a str>,
    pub payloads: &'a [PathBuf],
    pub config: Option<&'a Path>,
    /// Let the runs reach any host `[hooks.egress]` allows. Without it, only the hosts
    /// `[hooks.egress.redirect]` maps (to stubs) are reached: both runs are real, and a Hook's
    /// side effects (an email, an SMS, a webhook) would otherwise happen twice.
    pub allow_network: bool,
}

/// Exit 2 with `message`: the Hook or an input cannot be used.
fn unusable(message: String) -> Failure {
    Failure::invalid(format!("hookgate: {message}"))
}

pub fn run(a: Args<'_>) -> Result<(), Failure> {
    let explicit = a.trigger.map(parse_trigger).transpose()?;
    let hooks_cfg = match a.config.map(Config::load).transpose() {
        Ok(c) => c.map(|c| c.hooks).unwrap_or_default(),
        Err(errors) => return Err(Failure::invalid(errors.to_string())),
    };
    let folder = a
        .hook
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<Trigger>().ok());
    let trigger = explicit.or(folder).ok_or_else(|| {
        unusable(format!(
            "cannot tell the trigger of {}: put it in hooks/<trigger>/ or pass --trigger",
            a.hook.display()
        ))
    })?;
    let source = std::fs::read_to_string(a.hook)
        .map_err(|e| unusable(format!("cannot read {}: {e}", a.hook.display())))?;
    if let Some(out) = a.output {
        check_output(out, a.hook, a.force)?;
    }
    let shown = a
        .hook
        .file_name()
        .map(|n| format!("{}/{}", trigger.id(), n.to_string_lossy()))
        .unwrap_or_else(|| a.hook.display().to_string());
    if crate::hooks::actions::kind_of_source(&source, trigger) == Kind::Action {
        return Err(unusable(format!(
            "{} is already an Action (it exports {})",
            a.hook.display(),
            crate::hooks::actions::export_name(trigger)
        )));
    }
    let converted = convert(trigger, &shown, &source).map_err(|e| {
        unusable(format!(
            "{} cannot be converted:\n  {}",
            a.hook.display(),
            e.0.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    })?;

    // The Action is written even when parts could not be converted: its TODO(migrate) lines
    // say what to finish by hand.
    match a.output {
        Some(out) => std::fs::write(out, &converted.source)
            .map_err(|e| unusable(format!("cannot write {}: {e}", out.display())))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(converted.source.as_bytes());
            let _ = stdout.flush();
        }
    }
    let mut report: Vec<String> = Vec::new();
    for c in &converted.changes {
        report.push(format!("migrated  {c}"));
    }
    if !converted.todos.is_empty() {
        let lines: Vec<String> = converted
            .todos
            .iter()
            .map(|t| format!("  {}:{}: {}", a.hook.display(), t.line, t.what))
            .collect();
        return Err(unusable(format!(
            "{} could not be converted whole (the Action marks these TODO(migrate)):\n{}",
            a.hook.display(),
            lines.join("\n")
        )));
    }

    let table = compare(
        a.hook,
        folder.is_some(),
        trigger,
        &converted.source,
        a.payloads,
        &hooks_cfg,
        a.allow_network,
    )?;
    let (succeeded, refused) = (table.succeeded, table.refused);
    let table = table.rows;
    let differ = table.iter().any(|r| !r.same);
    let mut text = report.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&render(&table));
    if differ {
        let fields: Vec<String> = table
            .iter()
            .filter(|r| !r.same)
            .map(|r| format!("{} ({})", r.field, r.payload))
            .collect();
        text.push_str(&format!(
            "the Action differs from the Hook in: {}\n",
            fields.join(", ")
        ));
        if trigger == Trigger::CredentialsExchange
            && table.iter().any(|r| !r.same && r.field == "scope")
        {
            text.push_str("(an Action's target scopes are limited to the scopes the identity server granted, as on Auth0: a Hook that adds a scope cannot be an Action unless the client is granted it)\n");
        }
    } else if !succeeded {
        text.push_str("the Hook and the Action failed on every payload, so what they do when they succeed was not compared: give a --payload on which the Hook succeeds\n");
    } else {
        text.push_str("the Action gives the Hook's result on every payload\n");
    }
    for host in &refused {
        text.push_str(&format!(
            "refused the outbound request to {host}: hookgate migrate runs the Hook and the Action for real, so it reaches only hosts mapped to stubs in [hooks.egress.redirect] (--config) unless you pass --allow-network\n"
        ));
    }
    if a.output.is_some() {
        print!("{text}");
        if let Some(out) = a.output {
            println!("wrote {}", out.display());
        }
    } else {
        eprint!("{text}");
    }
    if differ {
        return Err(Failure {
            message: "hookgate: the Action and the Hook differ (see the table)".into(),
            code: 1,
        });
    }
    if !succeeded {
        return Err(Failure {
            message: "hookgate: the Hook and the Action both failed on every payload".into(),
            code: 1,
        });
    }
    Ok(())
}

/// Whether the Action may be written to `out`: never over the Hook itself (even with
/// `--force`), never through a symlink to nothing (it would create a file wherever the link
/// points), and not over an existing file or into a trigger folder (there it would load beside
/// the Hook and run too) without `--force`.
fn check_output(out: &Path, hook: &Path, force: bool) -> Result<(), Failure> {
    let canonical = |p: &Path| p.canonicalize().ok();
    if canonical(out).is_some() && canonical(out) == canonical(hook) {
        return Err(unusable(format!(
            "-o {} is the Hook itself: choose another file",
            out.display()
        )));
    }
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        if meta.file_type().is_symlink() && !out.exists() {
            return Err(unusable(format!(
                "-o {} is a symlink to a file that does not exist: choose another file",
                out.display()
            )));
        }
        if !force {
            return Err(unusable(format!(
                "{} already exists; pass --force to overwrite it, or choose another -o",
                out.display()
            )));
        }
    }
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let in_trigger_folder = canonical(folder)
        .as_deref()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.parse::<Trigger>().is_ok());
    if in_trigger_folder && !force {
        return Err(unusable(format!(
            "-o {} is in a trigger folder: a running hookgate would load the Action there beside the Hook and run both; pass --force if that is what you want",
            out.display()
        )));
    }
    Ok(())
}

/// One compared field.
struct Row {
    payload: String,
    field: String,
    hook: String,
    action: String,
    same: bool,
    /// Both runs failed on this payload: "the same" would say too much.
    both_failed: bool,
}

/// What the runs showed.
struct Compared {
    rows: Vec<Row>,
    /// On some payload, neither the Hook nor the Action failed.
    succeeded: bool,
    /// Hosts whose requests the default no-network rule refused.
    refused: std::collections::BTreeSet<String>,
}

/// What the egress refusal of a host not allowed says (engine::egress).
const NOT_ALLOWED: &str = "is not in [hooks.egress] allow_hosts";

/// Each outbound request of a run, as outcome fields (`request 1` = `POST https://x/y -> 200`),
/// so a Hook and its Action are compared on what they send, not only on whether they failed.
fn with_requests(
    mut o: BTreeMap<String, String>,
    report: &crate::engine::report::CallReport,
    refused: &mut std::collections::BTreeSet<String>,
) -> BTreeMap<String, String> {
    for (i, r) in report.requests.iter().enumerate() {
        let answer = match (&r.status, &r.error) {
            (_, Some(e)) => {
                if e.contains(NOT_ALLOWED) {
                    refused.insert(r.host.clone());
                }
                format!("failed: {e}")
            }
            (Some(s), None) => s.to_string(),
            (None, None) => "no answer".into(),
        };
        o.insert(
            format!("request {}", i + 1),
            format!("{} {} -> {answer}", r.method, r.url),
        );
    }
    if report.requests_omitted > 0 {
        o.insert(
            "requests omitted".into(),
            report.requests_omitted.to_string(),
        );
    }
    o
}

/// Run the Hook and the Action on each payload; one row per field of either outcome.
fn compare(
    hook_file: &Path,
    in_trigger_folder: bool,
    trigger: Trigger,
    action_source: &str,
    payloads: &[PathBuf],
    hooks: &HooksConfig,
    allow_network: bool,
) -> Result<Compared, Failure> {
    let root = match in_trigger_folder {
        true => hook_file.parent().and_then(Path::parent),
        false => hook_file.parent(),
    }
    .filter(|p| !p.as_os_str().is_empty())
    .unwrap_or(Path::new("."));
    let mut builder = ProgramBuilder::new(root);
    let hook_program = builder.build(hook_file).map_err(|errors| {
        unusable(format!(
            "{} cannot be loaded, so it cannot be compared:\n  {}",
            hook_file.display(),
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    })?;
    // The Action stands where the Hook is (its relative requires resolve alike); not written.
    let canonical_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let canonical_hook = hook_file
        .canonicalize()
        .unwrap_or_else(|_| hook_file.to_path_buf());
    let relative = canonical_hook
        .strip_prefix(&canonical_root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(hook_file.file_name().unwrap_or_default()));
    let relative = relative.with_file_name(format!(
        "{}.action.js",
        relative.file_stem().unwrap_or_default().to_string_lossy()
    ));
    let action_program = builder
        .build_source(&relative, action_source)
        .map_err(|errors| {
            unusable(format!(
                "the generated Action does not load (a bug in hookgate migrate: please report it):\n  {}",
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ))
        })?;
    let mut cfg = HooksConfig {
        workers: Some(1),
        ..hooks.clone()
    };
    if !allow_network {
        // Only the hosts mapped to stubs (and allowed, if the configuration limits hosts).
        let mapped: Vec<String> = cfg
            .egress
            .redirect
            .keys()
            .filter(|h| match &cfg.egress.allow_hosts {
                None => true,
                Some(allowed) => allowed.iter().any(|a| {
                    a.eq_ignore_ascii_case(h)
                        || a.strip_prefix("*.").is_some_and(|suffix| {
                            h.to_ascii_lowercase()
                                .ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
                        })
                }),
            })
            .cloned()
            .collect();
        cfg.egress.allow_hosts = Some(mapped);
    }
    let stem = hook_file
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let load = |name: String, program| {
        Hook::standalone(
            name,
            trigger,
            hook_file.to_path_buf(),
            Duration::from_millis(cfg.timeout_ms),
            BTreeMap::new(),
            program,
        )
        .probed(&cfg)
        .map_err(unusable)
    };
    let hook = load(format!("{}/{stem}", trigger.id()), hook_program)?;
    let action = load(format!("{}/{stem}.action", trigger.id()), action_program)?;
    if action.kind != Kind::Action {
        return Err(unusable(
            "the generated file does not load as an Action (a bug in hookgate migrate)".into(),
        ));
    }
    let mut inputs: Vec<(String, Option<Value>)> = vec![("default".into(), None)];
    for p in payloads {
        let text = std::fs::read_to_string(p)
            .map_err(|e| unusable(format!("cannot read the payload {}: {e}", p.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| unusable(format!("the payload {} is not JSON: {e}", p.display())))?;
        if !v.is_object() {
            return Err(unusable(format!(
                "the payload {} must be a JSON object keyed by argument name",
                p.display()
            )));
        }
        inputs.push((p.display().to_string(), Some(v)));
    }
    let engine =
        Engine::start(&cfg).map_err(|e| unusable(format!("the engine did not start: {e:#}")))?;
    let mut rows = Vec::new();
    let mut succeeded = false;
    let mut refused = std::collections::BTreeSet::new();
    for (name, payload) in inputs {
        let args = arguments(trigger, payload, &BTreeMap::new())
            .map_err(|e| unusable(format!("payload {name}: {e}")))?;
        let run = |h: &Hook| -> (Result<Value, HookError>, _) {
            let script: Arc<Script> = Arc::clone(h);
            execute_blocking(&engine, &script, args.clone())
        };
        let (hook_result, hook_report) = run(&hook);
        let (action_result, action_report) = run(&action);
        let by_hook = with_requests(
            outcome(trigger, false, &hook_result),
            &hook_report,
            &mut refused,
        );
        let by_action = with_requests(
            outcome(trigger, true, &action_result),
            &action_report,
            &mut refused,
        );
        let both_failed = by_hook.contains_key("error") && by_action.contains_key("error");
        succeeded |= !by_hook.contains_key("error") && !by_action.contains_key("error");
        let differing: Vec<String> = differences(&by_hook, &by_action)
            .into_iter()
            .map(|(f, _, _)| f)
            .collect();
        let fields: std::collections::BTreeSet<&String> =
            by_hook.keys().chain(by_action.keys()).collect();
        for field in fields {
            let absent = "(absent)".to_owned();
            rows.push(Row {
                payload: name.clone(),
                field: field.clone(),
                hook: by_hook.get(field).unwrap_or(&absent).clone(),
                action: by_action.get(field).unwrap_or(&absent).clone(),
                same: !differing.contains(field),
                both_failed,
            });
        }
    }
    engine.finish();
    Ok(Compared {
        rows,
        succeeded,
        refused,
    })
}

/// The table: payload, field, the Hook's value, the Action's, and `=` or `DIFFERS`.
fn render(rows: &[Row]) -> String {
    fn cut(s: &str) -> String {
        let s = s.replace('\n', " ");
        if s.chars().count() > 48 {
            format!("{}…", s.chars().take(47).collect::<String>())
        } else {
            s
        }
    }
    let header = ["payload", "field", "hook", "action", ""];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                cut(&r.payload),
                cut(&r.field),
                cut(&r.hook),
                cut(&r.action),
                match (r.same, r.both_failed) {
                    (false, _) => "DIFFERS".into(),
                    (true, true) => "both failed".into(),
                    (true, false) => "=".into(),
                },
            ]
        })
        .collect();
    let mut width = header.map(|h| h.chars().count());
    for c in &cells {
        for (w, cell) in width.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, cell) in c.iter().enumerate() {
            s.push_str(cell);
            if i + 1 < c.len() {
                s.push_str(&" ".repeat(width[i] - cell.chars().count() + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(String::from));
    for c in &cells {
        out.push_str(&line(c));
    }
    out
}
