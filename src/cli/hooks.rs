//! `hookgate hooks list|enable|disable|rm|order` and `hookgate hooks secrets list|set|rm`:
//! managing hooks from the command line. While a hookgate started from the same configuration
//! runs with its management API, every command goes through that API (`remote.rs`), so the
//! running process makes the change and has it in force when the command returns; otherwise the
//! command edits the files directly through the same store the API uses (`admin::store`), and a
//! hookgate started later (or one running without the API, through its hot reload) runs them.
//!
//! A hook is named on the command line by its id (`hk-…`), its name (names are unique), or
//! `<trigger>/<name>`.
//!
//! Owns: the subcommands' arguments, which backend serves them, and what they print. Must not:
//! write a hook's files or settings itself (the store does, in either mode), or print a
//! secret's value.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::remote::Remote;
use super::Failure;
use crate::admin::store::{HookPatch, HookRecord, Store};
use crate::config::{Config, Trigger};

#[derive(Subcommand)]
pub enum HooksCommand {
    /// List the hooks: id, trigger, name, enabled, run order and secret names.
    List {
        /// A JSON array instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run a hook again.
    Enable {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
    },
    /// Stop running a hook; its file and settings stay.
    Disable {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
    },
    /// Delete a hook: its file, its settings and the secrets stored for it.
    Rm {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
    },
    /// Set the run order of one trigger's hooks: those named run first, in the order given, the
    /// trigger's other hooks after them.
    Order {
        /// Hooks of one trigger, first to run first (each an id, a name or `<trigger>/<name>`).
        #[arg(required = true)]
        hooks: Vec<String>,
    },
    /// A hook's secrets (`context.webtask.secrets`): names only are ever shown.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// The names of a hook's secrets.
    List {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
    },
    /// Add a secret, or replace its value. Without VALUE the value is read from standard input
    /// (one trailing line ending dropped), which keeps it out of the shell's history.
    Set {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
        /// The secret's name: the hook reads `context.webtask.secrets.NAME`.
        name: String,
        /// The value; absent: read from standard input.
        value: Option<String>,
    },
    /// Remove secrets by name.
    Rm {
        /// The hook: its id (`hk-…`), its name, or `<trigger>/<name>`.
        hook: String,
        /// The secrets' names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// `hookgate hooks <command>`.
pub fn run(config: &Path, command: HooksCommand) -> Result<(), Failure> {
    let c = Config::load(config).map_err(|e| Failure::invalid(e.to_string()))?;
    let backend = Backend::open(&c, scopes(&command))?;
    let out = execute(&backend, command)?;
    if !out.is_empty() {
        println!("{out}");
    }
    Ok(())
}

/// Every scope a command needs through the API (a token must have all of them): each reads the
/// hooks first, to find the one named.
fn scopes(command: &HooksCommand) -> &'static [&'static str] {
    match command {
        HooksCommand::List { .. }
        | HooksCommand::Secrets {
            command: SecretsCommand::List { .. },
        } => &["read:hooks"],
        HooksCommand::Enable { .. }
        | HooksCommand::Disable { .. }
        | HooksCommand::Order { .. }
        | HooksCommand::Secrets {
            command: SecretsCommand::Set { .. },
        } => &["read:hooks", "update:hooks"],
        HooksCommand::Rm { .. }
        | HooksCommand::Secrets {
            command: SecretsCommand::Rm { .. },
        } => &["read:hooks", "delete:hooks"],
    }
}

/// A hook as the commands show it, from either backend.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    name: String,
    trigger: String,
    enabled: bool,
    order: i64,
    secrets: Vec<String>,
    file: String,
}

impl Row {
    fn of_record(h: &HookRecord) -> Row {
        Row {
            id: h.id.clone(),
            name: h.name.clone(),
            trigger: h.trigger.id().to_string(),
            enabled: h.enabled,
            order: h.order,
            secrets: h.secrets.clone(),
            file: h.file.to_string_lossy().replace('\\', "/"),
        }
    }

    /// A hook of `GET /api/hookgate/hooks` (hookgate's own shape: Auth0's fields, `order`,
    /// `secrets` names, `file`).
    fn of_json(v: &Value) -> Row {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Row {
            id: s("id"),
            name: s("name"),
            trigger: s("triggerId"),
            enabled: v["enabled"].as_bool().unwrap_or(false),
            order: v["order"].as_i64().unwrap_or(0),
            secrets: v["secrets"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            file: s("file"),
        }
    }

    /// `credentials-exchange/add-claims (hk-…)`.
    fn label(&self) -> String {
        format!("{}/{} ({})", self.trigger, self.name, self.id)
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "triggerId": self.trigger,
            "enabled": self.enabled,
            "order": self.order,
            "secrets": self.secrets,
            "file": self.file,
        })
    }
}

/// Where the commands read and write: the running hookgate's API, or the files.
enum Backend {
    Api(Remote),
    Files {
        store: Store,
        config: PathBuf,
        /// `[admin] api_listen`, for the note that no hookgate answered there.
        api: String,
        /// The configuration starts no API (no `[[admin.token]]`).
        no_api: bool,
    },
}

impl Backend {
    fn open(config: &Config, scopes: &[&str]) -> Result<Backend, Failure> {
        if let Some(remote) = Remote::find(config, scopes)? {
            return Ok(Backend::Api(remote));
        }
        Ok(Backend::Files {
            store: Store::for_config(config),
            config: config.path.clone(),
            api: config.admin.api_listen.to_string(),
            no_api: config.admin.tokens.is_empty(),
        })
    }

    /// Where a change went, for the line a write prints.
    fn applied(&self) -> String {
        match self {
            Backend::Api(r) => format!("applied by {}", r.describe()),
            Backend::Files {
                config,
                api,
                no_api,
                ..
            } => {
                if *no_api {
                    format!("written to the files ({} starts no management API; a running hookgate reloads them)", config.display())
                } else {
                    format!("written to the files (no hookgate answers at {api}; one started from them runs the change)")
                }
            }
        }
    }

    fn list(&self) -> Result<Vec<Row>, Failure> {
        match self {
            Backend::Api(r) => {
                let v = r.call(Method::GET, "/api/hookgate/hooks", None)?;
                Ok(v.as_array()
                    .map(|a| a.iter().map(Row::of_json).collect())
                    .unwrap_or_default())
            }
            Backend::Files { store, .. } => Ok(store
                .list()
                .map_err(store_failure)?
                .iter()
                .map(Row::of_record)
                .collect()),
        }
    }

    fn set_enabled(&self, hook: &Row, enabled: bool) -> Result<(), Failure> {
        match self {
            Backend::Api(r) => {
                r.call(
                    Method::PATCH,
                    &format!("/api/v2/hooks/{}", hook.id),
                    Some(&json!({ "enabled": enabled })),
                )?;
            }
            Backend::Files { store, .. } => {
                let patch = HookPatch {
                    enabled: Some(enabled),
                    ..HookPatch::default()
                };
                store.update(&hook.id, patch).map_err(store_failure)?;
            }
        }
        Ok(())
    }

    fn delete(&self, hook: &Row) -> Result<(), Failure> {
        match self {
            Backend::Api(r) => {
                r.call(Method::DELETE, &format!("/api/v2/hooks/{}", hook.id), None)?;
            }
            Backend::Files { store, .. } => store.delete(&hook.id).map_err(store_failure)?,
        }
        Ok(())
    }

    /// The trigger's hooks in their new run order.
    fn order(&self, trigger: &str, ids: &[String]) -> Result<Vec<Row>, Failure> {
        let mut rows: Vec<Row> = match self {
            Backend::Api(r) => {
                let v = r.call(
                    Method::POST,
                    "/api/hookgate/hooks/order",
                    Some(&json!({ "triggerId": trigger, "ids": ids })),
                )?;
                v.as_array()
                    .map(|a| a.iter().map(Row::of_json).collect())
                    .unwrap_or_default()
            }
            Backend::Files { store, .. } => {
                let t: Trigger = trigger
                    .parse()
                    .map_err(|e| Failure::invalid(format!("{e}")))?;
                store
                    .set_order(t, ids)
                    .map_err(store_failure)?
                    .iter()
                    .map(Row::of_record)
                    .collect()
            }
        };
        rows.sort_by(|a, b| a.order.cmp(&b.order).then(a.file.cmp(&b.file)));
        Ok(rows)
    }

    /// Add or replace one secret; true when it was added.
    fn set_secret(&self, hook: &Row, name: &str, value: &str) -> Result<bool, Failure> {
        let one = BTreeMap::from([(name.to_string(), value.to_string())]);
        let exists = hook.secrets.iter().any(|s| s == name);
        match self {
            Backend::Api(r) => {
                let path = format!("/api/v2/hooks/{}/secrets", hook.id);
                let body = json!(one);
                // Auth0's calls: POST adds (409 if the name exists), PATCH replaces.
                let method = if exists { Method::PATCH } else { Method::POST };
                r.call(method, &path, Some(&body))?;
            }
            Backend::Files { store, .. } => {
                if exists {
                    store.update_secrets(&hook.id, &one)
                } else {
                    store.add_secrets(&hook.id, &one)
                }
                .map_err(store_failure)?;
            }
        }
        Ok(!exists)
    }

    fn delete_secrets(&self, hook: &Row, names: &[String]) -> Result<(), Failure> {
        match self {
            Backend::Api(r) => {
                r.call(
                    Method::DELETE,
                    &format!("/api/v2/hooks/{}/secrets", hook.id),
                    Some(&json!(names)),
                )?;
            }
            Backend::Files { store, .. } => store
                .delete_secrets(&hook.id, names)
                .map_err(store_failure)?,
        }
        Ok(())
    }
}

fn store_failure(e: crate::admin::store::StoreError) -> Failure {
    Failure::failed(e.to_string())
}

/// The hook `reference` names: an id, a name, or `<trigger>/<name>`.
fn resolve<'a>(rows: &'a [Row], reference: &str) -> Result<&'a Row, Failure> {
    let found: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.id == reference
                || r.name == reference
                || format!("{}/{}", r.trigger, r.name) == reference
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::failed(format!(
            "no hook `{reference}`: name one by id, name or <trigger>/<name> (`hookgate hooks list` shows them{})",
            if rows.is_empty() { "; there are none" } else { "" }
        ))),
        many => Err(Failure::failed(format!(
            "`{reference}` names {} hooks: {}; name one by id or <trigger>/<name>",
            many.len(),
            many.iter().map(|r| r.label()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn execute(backend: &Backend, command: HooksCommand) -> Result<String, Failure> {
    let rows = backend.list()?;
    match command {
        HooksCommand::List { json } => {
            if json {
                let all: Vec<Value> = rows.iter().map(Row::json).collect();
                return Ok(serde_json::to_string_pretty(&all).expect("JSON prints"));
            }
            eprintln!("{}", source_note(backend));
            Ok(table(&rows))
        }
        HooksCommand::Enable { hook } => switch(backend, &rows, &hook, true),
        HooksCommand::Disable { hook } => switch(backend, &rows, &hook, false),
        HooksCommand::Rm { hook } => {
            let row = resolve(&rows, &hook)?;
            backend.delete(row)?;
            Ok(format!(
                "deleted {} with its settings and stored secrets; {}",
                row.label(),
                backend.applied()
            ))
        }
        HooksCommand::Order { hooks } => {
            let named: Vec<&Row> = hooks
                .iter()
                .map(|h| resolve(&rows, h))
                .collect::<Result<_, _>>()?;
            let trigger = named[0].trigger.clone();
            if let Some(other) = named.iter().find(|r| r.trigger != trigger) {
                return Err(Failure::invalid(format!(
                    "hookgate: order sets the run order within one trigger: {} is a {} hook, {} a {} hook",
                    named[0].label(),
                    trigger,
                    other.label(),
                    other.trigger
                )));
            }
            let ids: Vec<String> = named.iter().map(|r| r.id.clone()).collect();
            let ordered = backend.order(&trigger, &ids)?;
            let mut out = format!("{trigger} hooks now run in this order:\n");
            for (i, r) in ordered.iter().enumerate() {
                out.push_str(&format!(
                    "  {}. {}{}\n",
                    i + 1,
                    r.label(),
                    if r.enabled { "" } else { " (disabled)" }
                ));
            }
            out.push_str(&backend.applied());
            Ok(out)
        }
        HooksCommand::Secrets { command } => secrets(backend, &rows, command),
    }
}

/// `enable` and `disable`.
fn switch(backend: &Backend, rows: &[Row], hook: &str, enable: bool) -> Result<String, Failure> {
    let row = resolve(rows, hook)?;
    let word = if enable { "enabled" } else { "disabled" };
    if row.enabled == enable {
        return Ok(format!("{} is already {word}", row.label()));
    }
    backend.set_enabled(row, enable)?;
    Ok(format!("{word} {}; {}", row.label(), backend.applied()))
}

fn secrets(backend: &Backend, rows: &[Row], command: SecretsCommand) -> Result<String, Failure> {
    match command {
        SecretsCommand::List { hook } => {
            let row = resolve(rows, &hook)?;
            if row.secrets.is_empty() {
                return Ok(format!(
                    "{} has no secrets; add one with `hookgate hooks secrets set {} NAME`",
                    row.label(),
                    row.name
                ));
            }
            Ok(row.secrets.join("\n"))
        }
        SecretsCommand::Set { hook, name, value } => {
            let row = resolve(rows, &hook)?;
            let value = match value {
                Some(v) => v,
                None => read_stdin_value()?,
            };
            let added = backend.set_secret(row, &name, &value)?;
            Ok(format!(
                "{} secret {name} of {}; {}",
                if added { "added" } else { "replaced" },
                row.label(),
                backend.applied()
            ))
        }
        SecretsCommand::Rm { hook, names } => {
            let row = resolve(rows, &hook)?;
            let missing: Vec<&String> = names.iter().filter(|n| !row.secrets.contains(n)).collect();
            if !missing.is_empty() {
                return Err(Failure::failed(format!(
                    "{} has no secret {}; it has: {}",
                    row.label(),
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if row.secrets.is_empty() {
                        "none".to_string()
                    } else {
                        row.secrets.join(", ")
                    }
                )));
            }
            backend.delete_secrets(row, &names)?;
            Ok(format!(
                "removed secret(s) {} of {}; {}",
                names.join(", "),
                row.label(),
                backend.applied()
            ))
        }
    }
}

/// A secret's value from standard input: one trailing line ending dropped, as a secret file's.
fn read_stdin_value() -> Result<String, Failure> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprintln!("value (then Enter, then Ctrl-D):");
    }
    let mut v = String::new();
    std::io::stdin()
        .read_to_string(&mut v)
        .map_err(|e| Failure::failed(format!("cannot read the value from standard input: {e}")))?;
    if v.ends_with('\n') {
        v.pop();
        if v.ends_with('\r') {
            v.pop();
        }
    }
    if v.is_empty() {
        return Err(Failure::invalid(
            "hookgate: the secret's value is empty: give it as an argument, or on standard input (`printf %s \"$VALUE\" | hookgate hooks secrets set HOOK NAME`)"
                .into(),
        ));
    }
    Ok(v)
}

/// Says on stderr where a listing came from.
fn source_note(backend: &Backend) -> String {
    match backend {
        Backend::Api(r) => format!("# from {}", r.describe()),
        Backend::Files {
            config,
            api,
            no_api,
            ..
        } => {
            if *no_api {
                format!(
                    "# from the files of {} (it starts no management API)",
                    config.display()
                )
            } else {
                format!(
                    "# from the files of {} (no hookgate answers at {api})",
                    config.display()
                )
            }
        }
    }
}

/// The hooks as aligned columns.
fn table(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "no hooks; deploy some with auth0-deploy-cli or write hooks/<trigger>/<name>.js (`hookgate new`)".into();
    }
    let header = ["ID", "TRIGGER", "NAME", "ENABLED", "ORDER", "SECRETS"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.trigger.clone(),
                r.name.clone(),
                if r.enabled { "yes" } else { "no" }.to_string(),
                r.order.to_string(),
                if r.secrets.is_empty() {
                    "-".to_string()
                } else {
                    r.secrets.join(",")
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        cols.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}
