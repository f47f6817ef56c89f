//! `hookgate migrate HOOK.js`: write the Auth0 Action equivalent of a Hook, then run both on the
//! same payloads and show whether they give the same result.
//!
//! Where the Action goes: stdout (the comparison table then goes to stderr, so
//! `hookgate migrate h.js > h.action.js` works), or `-o FILE`, never over an existing file unless
//! `--force`. It is not written into a trigger folder by default: there it would run beside the
//! Hook it copies. Exit codes: 0 the two agree on every payload, 1 they differ (the fields are
//! named), 2 the Hook could not be converted (the lines are named) or an input is unusable.
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
        if out.exists() && !a.force {
            return Err(unusable(format!(
                "{} already exists; pass --force to overwrite it, or choose another -o",
                out.display()
            )));
        }
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
            .map_err(|e| Failure::failed(format!("cannot write {}: {e}", out.display())))?,
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
    )?;
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
    } else {
        text.push_str("the Action gives the Hook's result on every payload\n");
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
    Ok(())
}

/// One compared field.
struct Row {
    payload: String,
    field: String,
    hook: String,
    action: String,
    same: bool,
}

/// Run the Hook and the Action on each payload; one row per field of either outcome.
fn compare(
    hook_file: &Path,
    in_trigger_folder: bool,
    trigger: Trigger,
    action_source: &str,
    payloads: &[PathBuf],
    hooks: &HooksConfig,
) -> Result<Vec<Row>, Failure> {
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
    let cfg = HooksConfig {
        workers: Some(1),
        ..hooks.clone()
    };
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
    let engine = Engine::start(&cfg).map_err(|e| Failure::failed(format!("{e:#}")))?;
    let mut rows = Vec::new();
    for (name, payload) in inputs {
        let args = arguments(trigger, payload, &BTreeMap::new())
            .map_err(|e| unusable(format!("payload {name}: {e}")))?;
        let run = |h: &Hook| -> Result<Value, HookError> {
            let script: Arc<Script> = Arc::clone(h);
            execute_blocking(&engine, &script, args.clone()).0
        };
        let by_hook = outcome(trigger, false, &run(&hook));
        let by_action = outcome(trigger, true, &run(&action));
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
            });
        }
    }
    engine.finish();
    Ok(rows)
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
                if r.same { "=".into() } else { "DIFFERS".into() },
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
