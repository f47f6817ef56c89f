//! The store of record for hooks: the files. A hook is `<hooks dir>/<triggerId>/<name>.js`; its
//! settings are its `[[hooks.hook]]` entry in hookgate.toml, edited with `toml_edit` so that the
//! comments and layout a team reviews in git are kept. Secrets set here are files under
//! `[admin] secrets_dir` (`<hook id>/<NAME>`, 0600 in a 0700 folder), named by the entry.
//!
//! Every change is validated before anything is written (name, size, trigger, the script
//! compiled and evaluated once as a reload would, the edited configuration parsed), then written
//! atomically (a temporary file in the same folder, fsync, rename), all under one lock, so two
//! changes never interleave and a reader never sees a torn file: the last write wins. Hot reload
//! then picks the change up like any edit on disk. Order of writes: every file of a change is
//! staged first (written and fsync'd under a dot name), then put in place by renames in a row; a
//! file a change adds goes in after the entry that disables or describes it, and a file a change
//! removes goes before its entry, so that a reload in between never runs a hook with settings it
//! should not have (at worst it rejects the half-written change once, and the next check, a
//! debounce later, sees the whole of it).
//!
//! In cluster mode (`[cluster]`) the files are this replica's copy of the cluster's revision:
//! the management API runs each operation here through `crate::cluster`, which publishes what it
//! wrote to Redis, and applies other replicas' changes under [`process_lock`].
//!
//! Usable without a running hookgate (`hookgate hooks ...` edits the files directly then).
//!
//! Owns: reading hooks from the files, ids, and every write the management API makes to them.
//! Must not: swap generations (hot reload does), speak HTTP (the API maps [`StoreError`] to
//! statuses), or log a secret's value.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::config::{Config, OnError, Trigger};
use crate::engine::program::ProgramBuilder;
use crate::hooks::Hook;

/// The largest script accepted: 100 KiB (Auth0 documented no figure; hooks are small, and a
/// generation compiles every one of them at each reload).
pub const MAX_SCRIPT_BYTES: usize = 100 * 1024;
/// Secrets per hook, as Auth0: at most 20.
pub const MAX_SECRETS: usize = 20;
/// The largest secret value accepted: 64 KiB.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Why a change was refused or failed. The API maps each to one status (`api::errors`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("The hook does not exist.")]
    NotFound,
    /// Bad input: a name, a trigger, a size, a secret name, an order list.
    #[error("{0}")]
    Invalid(String),
    /// A script that does not compile or cannot load; names `file:line`.
    #[error("{0}")]
    Script(String),
    /// A duplicate hook name or secret.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    SecretNotFound(String),
    /// A file the store must write cannot be written (read-only: a ConfigMap, permissions).
    #[error("cannot write {file}: {error}; the management API stores hooks in this file, so it must be writable (a read-only ConfigMap cannot be managed through the API: change it where it comes from)")]
    ReadOnly { file: PathBuf, error: String },
    /// hookgate.toml cannot be read, parsed, or edited as the store needs.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// One hook as the files describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRecord {
    pub id: String,
    /// The file's stem: Auth0's hook name.
    pub name: String,
    pub trigger: Trigger,
    /// Relative to the hooks folder: `<triggerId>/<name>.js`.
    pub file: PathBuf,
    pub script: String,
    pub enabled: bool,
    pub dependencies: BTreeMap<String, String>,
    pub order: i64,
    pub timeout_ms: Option<u64>,
    pub on_error: OnError,
    pub clients: Option<Vec<String>>,
    pub routes: Option<Vec<String>>,
    pub max_concurrency: Option<usize>,
    /// Secret names (never values).
    pub secrets: Vec<String>,
    /// Whether it has a `[[hooks.hook]]` entry (without one it runs with the defaults).
    pub has_entry: bool,
    /// Packages of `dependencies` missing from `node_modules` or at another major version.
    pub dependency_problems: Vec<String>,
}

/// A hook to create (Auth0's `POST /hooks`).
#[derive(Debug, Clone)]
pub struct NewHook {
    pub name: String,
    pub script: String,
    pub trigger: Trigger,
    pub enabled: bool,
    pub dependencies: BTreeMap<String, String>,
}

/// A change to a hook; `None` leaves a field alone. For the optional settings, `Some(None)`
/// removes the setting (back to the default).
#[derive(Debug, Clone, Default)]
pub struct HookPatch {
    pub name: Option<String>,
    pub script: Option<String>,
    pub enabled: Option<bool>,
    pub dependencies: Option<BTreeMap<String, String>>,
    pub order: Option<i64>,
    pub timeout_ms: Option<Option<u64>>,
    pub on_error: Option<OnError>,
    pub clients: Option<Option<Vec<String>>>,
    pub routes: Option<Option<Vec<String>>>,
    pub max_concurrency: Option<Option<usize>>,
}

/// The files of one hookgate: its configuration file, hooks folder and secrets folder.
#[derive(Debug, Clone)]
pub struct Store {
    /// hookgate.toml (a symlink resolved: the rename goes where the file really is).
    config_path: PathBuf,
    base_dir: PathBuf,
    hooks_dir: PathBuf,
    /// As configured (relative to `base_dir` unless absolute): how entries name secret files.
    secrets_dir: PathBuf,
    lock: Arc<Mutex<()>>,
}

/// Every store of the process shares this lock: the API and anything else in-process that
/// writes the files take turns.
static LOCK: std::sync::LazyLock<Arc<Mutex<()>>> =
    std::sync::LazyLock::new(|| Arc::new(Mutex::new(())));

/// The lock every store of this process takes for an operation: the cluster layer holds it while
/// it applies a revision, so a store read never sees half of one.
pub fn process_lock() -> Arc<Mutex<()>> {
    LOCK.clone()
}

/// Writes made by stores of this process: the API compares it before and after an operation to
/// know whether to wait for a reload.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many writes stores of this process have made (files written, renamed or removed).
pub fn writes() -> u64 {
    WRITES.load(std::sync::atomic::Ordering::SeqCst)
}

fn wrote() {
    WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Held for one store operation (see [`Store::guard`]).
struct Guard<'a> {
    _process: std::sync::MutexGuard<'a, ()>,
    _file: Option<std::fs::File>,
}

/// What one operation reads first: the file's text and document, its validated model, the hooks.
struct Snapshot {
    text: String,
    doc: DocumentMut,
    config: Config,
    hooks: Vec<HookRecord>,
}

impl Store {
    /// The store of the configuration at `config_path` (which must load: the folders come from it).
    pub fn open(config_path: &Path) -> Result<Store> {
        let config = Config::load(config_path).map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Store::for_config(&config))
    }

    /// The store of an already loaded configuration (hookgate's own, at start).
    pub fn for_config(config: &Config) -> Store {
        let config_path =
            std::fs::canonicalize(&config.path).unwrap_or_else(|_| config.path.clone());
        let base_dir = config.base_dir().to_path_buf();
        Store {
            hooks_dir: base_dir.join(&config.hooks.dir),
            secrets_dir: config.admin.secrets_dir.clone(),
            config_path,
            base_dir,
            lock: LOCK.clone(),
        }
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn hooks_dir(&self) -> &Path {
        &self.hooks_dir
    }

    /// Every hook, in run order within each trigger (triggers in Auth0's order).
    pub fn list(&self) -> Result<Vec<HookRecord>> {
        let _g = self.guard();
        Ok(self.snapshot()?.hooks)
    }

    pub fn get(&self, id: &str) -> Result<HookRecord> {
        let _g = self.guard();
        find(&self.snapshot()?.hooks, id).cloned()
    }

    /// The hook with this name (Auth0 names are unique per tenant).
    pub fn find_by_name(&self, name: &str) -> Result<Option<HookRecord>> {
        let _g = self.guard();
        Ok(self.snapshot()?.hooks.into_iter().find(|h| h.name == name))
    }

    pub fn create(&self, new: NewHook) -> Result<HookRecord> {
        let _g = self.guard();
        let mut snap = self.snapshot()?;
        check_name(&new.name)?;
        check_script_size(&new.script)?;
        check_dependencies(&new.dependencies)?;
        if snap.hooks.iter().any(|h| h.name == new.name) {
            return Err(StoreError::Conflict(format!(
                "A hook with the same name already exists: {}",
                new.name
            )));
        }
        let rel = rel_file(new.trigger, &new.name);
        if self.hooks_dir.join(&rel).exists() {
            return Err(StoreError::Conflict(format!(
                "{} already exists",
                rel.display()
            )));
        }
        self.check_script(&snap.config, new.trigger, &new.name, &new.script)?;
        let derived = derived_id(new.trigger, &new.name);
        let id = if snap.hooks.iter().any(|h| h.id == derived) {
            format!("hk-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
        } else {
            derived
        };
        {
            let entries = entries_mut(&mut snap.doc)?;
            let mut t = Table::new();
            t.insert("id", toml_edit::value(id.clone()));
            t.insert("file", toml_edit::value(rel_str(&rel)));
            t.insert("enabled", toml_edit::value(new.enabled));
            if !new.dependencies.is_empty() {
                t.insert(
                    "dependencies",
                    Item::Value(Value::InlineTable(string_table(&new.dependencies))),
                );
            }
            entries.push(t);
        }
        // Both staged, then the entry first: the file appears already described (disabled, if
        // so), never as a file without an entry (which would run enabled).
        let config = self.stage_config(&snap.text, &snap.doc)?;
        let file = self.stage_hook_file(&rel, &new.script)?;
        self.commit_config(config)?;
        file.commit()?;
        self.get_unlocked(&id)
    }

    pub fn update(&self, id: &str, patch: HookPatch) -> Result<HookRecord> {
        let _g = self.guard();
        let mut snap = self.snapshot()?;
        let hook = find(&snap.hooks, id)?.clone();
        let new_name = match &patch.name {
            Some(n) if *n != hook.name => {
                check_name(n)?;
                if snap.hooks.iter().any(|h| h.name == *n) {
                    return Err(StoreError::Conflict(format!(
                        "A hook with the same name already exists: {n}"
                    )));
                }
                if self.hooks_dir.join(rel_file(hook.trigger, n)).exists() {
                    return Err(StoreError::Conflict(format!(
                        "{} already exists",
                        rel_file(hook.trigger, n).display()
                    )));
                }
                Some(n.clone())
            }
            _ => None,
        };
        let name = new_name.clone().unwrap_or_else(|| hook.name.clone());
        if let Some(script) = &patch.script {
            check_script_size(script)?;
            self.check_script(&snap.config, hook.trigger, &name, script)?;
        }
        if let Some(deps) = &patch.dependencies {
            check_dependencies(deps)?;
        }
        if let Some(Some(0)) = patch.max_concurrency {
            return Err(StoreError::Invalid(
                "max_concurrency must be at least 1".into(),
            ));
        }
        if let Some(Some(0)) = patch.timeout_ms {
            return Err(StoreError::Invalid("timeout_ms must be at least 1".into()));
        }
        let new_rel = rel_file(hook.trigger, &name);
        {
            let entry = entry_mut(&mut snap.doc, &hook)?;
            if new_name.is_some() {
                // The id stays with the hook, whatever its file is called from now on.
                entry.insert("id", toml_edit::value(hook.id.clone()));
                entry.insert("file", toml_edit::value(rel_str(&new_rel)));
            }
            if let Some(e) = patch.enabled {
                entry.insert("enabled", toml_edit::value(e));
            }
            if let Some(deps) = &patch.dependencies {
                let value = (!deps.is_empty()).then(|| Value::InlineTable(string_table(deps)));
                set_opt(entry, "dependencies", value);
            }
            if let Some(o) = patch.order {
                entry.insert("order", toml_edit::value(o));
            }
            if let Some(t) = patch.timeout_ms {
                set_opt(entry, "timeout_ms", t.map(|v| Value::from(v as i64)));
            }
            if let Some(m) = patch.max_concurrency {
                set_opt(entry, "max_concurrency", m.map(|v| Value::from(v as i64)));
            }
            if let Some(e) = patch.on_error {
                let text = match e {
                    OnError::Deny => "deny",
                    OnError::Allow => "allow",
                };
                entry.insert("on_error", toml_edit::value(text));
            }
            if let Some(c) = &patch.clients {
                set_opt(entry, "clients", c.as_ref().map(|l| string_array(l)));
            }
            if let Some(r) = &patch.routes {
                set_opt(entry, "routes", r.as_ref().map(|l| string_array(l)));
            }
        }
        let config = self.stage_config(&snap.text, &snap.doc)?;
        let file = match &patch.script {
            Some(script) => Some(self.stage_hook_file(&new_rel, script)?),
            None => None,
        };
        self.commit_config(config)?;
        let old_path = self.hooks_dir.join(&hook.file);
        match (&new_name, file) {
            (None, Some(file)) => file.commit()?,
            (Some(_), Some(file)) => {
                file.commit()?;
                remove_file(&old_path)?;
            }
            (Some(_), None) => {
                std::fs::rename(&old_path, self.hooks_dir.join(&new_rel))
                    .map_err(|e| io_error(&old_path, e))?;
                wrote();
            }
            (None, None) => {}
        }
        self.get_unlocked(&hook.id)
    }

    /// Delete the hook's file, its entry and the secret files the API stored for it.
    pub fn delete(&self, id: &str) -> Result<()> {
        let _g = self.guard();
        let mut snap = self.snapshot()?;
        let hook = find(&snap.hooks, id)?.clone();
        if let Some(i) = entry_index(&mut snap.doc, &hook.file)? {
            entries_mut(&mut snap.doc)?.remove(i);
        }
        // The configuration staged, then the file removed first: without it the entry cannot
        // run anything; the other way round, the file would run with the defaults (enabled).
        let config = self.stage_config(&snap.text, &snap.doc)?;
        remove_file(&self.hooks_dir.join(&hook.file))?;
        self.commit_config(config)?;
        let dir = self.secrets_abs().join(&hook.id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            wrote();
        }
        Ok(())
    }

    /// Set the run order of a trigger's hooks: `ids` first, in that order, then the others in
    /// their current order.
    pub fn set_order(&self, trigger: Trigger, ids: &[String]) -> Result<Vec<HookRecord>> {
        let _g = self.guard();
        let mut snap = self.snapshot()?;
        let of_trigger: Vec<HookRecord> = snap
            .hooks
            .iter()
            .filter(|h| h.trigger == trigger)
            .cloned()
            .collect();
        for (i, id) in ids.iter().enumerate() {
            if !of_trigger.iter().any(|h| &h.id == id) {
                return Err(StoreError::Invalid(format!(
                    "ids[{i}]: no hook of {trigger} has the id {id}"
                )));
            }
            if ids[..i].contains(id) {
                return Err(StoreError::Invalid(format!(
                    "ids[{i}]: {id} is listed twice"
                )));
            }
        }
        let rest = of_trigger.iter().filter(|h| !ids.contains(&h.id));
        let ordered: Vec<&HookRecord> = ids
            .iter()
            .filter_map(|id| of_trigger.iter().find(|h| &h.id == id))
            .chain(rest)
            .collect();
        for (i, hook) in ordered.iter().enumerate() {
            if hook.order != i as i64 {
                entry_mut(&mut snap.doc, hook)?.insert("order", toml_edit::value(i as i64));
            }
        }
        let config = self.stage_config(&snap.text, &snap.doc)?;
        self.commit_config(config)?;
        Ok(self
            .snapshot()?
            .hooks
            .into_iter()
            .filter(|h| h.trigger == trigger)
            .collect())
    }

    pub fn secret_names(&self, id: &str) -> Result<Vec<String>> {
        Ok(self.get(id)?.secrets)
    }

    /// Add secrets; an existing name is a conflict (nothing is written then).
    pub fn add_secrets(&self, id: &str, secrets: &BTreeMap<String, String>) -> Result<()> {
        let _g = self.guard();
        let snap = self.snapshot()?;
        let hook = find(&snap.hooks, id)?.clone();
        check_secrets(secrets)?;
        let existing: Vec<&String> = secrets
            .keys()
            .filter(|k| hook.secrets.contains(k))
            .collect();
        if !existing.is_empty() {
            return Err(StoreError::Conflict(format!(
                "Secret already exists: {}",
                existing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if hook.secrets.len() + secrets.len() > MAX_SECRETS {
            return Err(StoreError::Invalid(format!(
                "a hook holds at most {MAX_SECRETS} secrets"
            )));
        }
        self.store_secrets(snap, &hook, secrets)
    }

    /// Change secrets' values; every name must exist. One that came from `{ env = ... }` or
    /// another file is stored by hookgate from now on.
    pub fn update_secrets(&self, id: &str, secrets: &BTreeMap<String, String>) -> Result<()> {
        let _g = self.guard();
        let snap = self.snapshot()?;
        let hook = find(&snap.hooks, id)?.clone();
        check_secrets(secrets)?;
        let missing: Vec<&str> = secrets
            .keys()
            .filter(|k| !hook.secrets.contains(k))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(StoreError::SecretNotFound(format!(
                "Secret does not exist: {}",
                missing.join(", ")
            )));
        }
        self.store_secrets(snap, &hook, secrets)
    }

    /// Remove secrets by name (names the hook does not have are ignored), with the files the API
    /// stored for them.
    pub fn delete_secrets(&self, id: &str, names: &[String]) -> Result<()> {
        let _g = self.guard();
        let mut snap = self.snapshot()?;
        let hook = find(&snap.hooks, id)?.clone();
        let names: Vec<&String> = names.iter().filter(|n| hook.secrets.contains(n)).collect();
        if names.is_empty() {
            return Ok(());
        }
        {
            let entry = entry_mut(&mut snap.doc, &hook)?;
            if let Some(table) = entry.get_mut("secrets").and_then(Item::as_table_like_mut) {
                for n in &names {
                    table.remove(n.as_str());
                }
                if table.is_empty() {
                    entry.remove("secrets");
                }
            }
        }
        let config = self.stage_config(&snap.text, &snap.doc)?;
        self.commit_config(config)?;
        for n in names {
            let path = self.secrets_abs().join(&hook.id).join(n);
            if path.exists() {
                remove_file(&path)?;
            }
        }
        Ok(())
    }

    // ---- internals ----

    /// One operation at a time: the process's lock, then an advisory lock on
    /// `.hookgate/store.lock` beside the configuration, so `hookgate hooks ...` run while hookgate
    /// serves (another process) takes turns with the API too. Where that file cannot be made (a
    /// read-only folder, where nothing can be written anyway) the process lock alone is taken.
    fn guard(&self) -> Guard<'_> {
        let process = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let dir = self
            .config_path
            .parent()
            .unwrap_or(Path::new("."))
            .join(".hookgate");
        let file = std::fs::create_dir_all(&dir)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(dir.join("store.lock"))
            })
            .ok();
        if let Some(f) = &file {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor this function owns; released when it closes.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        }
        Guard {
            _process: process,
            _file: file,
        }
    }

    fn get_unlocked(&self, id: &str) -> Result<HookRecord> {
        find(&self.snapshot()?.hooks, id).cloned()
    }

    fn secrets_abs(&self) -> PathBuf {
        self.base_dir.join(&self.secrets_dir)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let text = std::fs::read_to_string(&self.config_path).map_err(|e| {
            StoreError::Config(format!("cannot read {}: {e}", self.config_path.display()))
        })?;
        let config = Config::parse(&self.config_path, &text, &|k| std::env::var(k).ok())
            .map_err(|e| StoreError::Config(e.to_string()))?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| StoreError::Config(format!("{}: {e}", self.config_path.display())))?;
        let mut hooks = Vec::new();
        for trigger in Trigger::all() {
            let Ok(entries) = std::fs::read_dir(self.hooks_dir.join(trigger.id())) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "js") && p.is_file())
                .collect();
            files.sort();
            let mut of_trigger = Vec::new();
            for path in files {
                let name = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let rel = PathBuf::from(trigger.id()).join(path.file_name().unwrap_or_default());
                let entry = config.hooks.hook.iter().find(|s| s.file == rel);
                let script = std::fs::read(&path)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let dependencies = entry.map(|e| e.dependencies.clone()).unwrap_or_default();
                of_trigger.push(HookRecord {
                    id: entry
                        .and_then(|e| e.id.clone())
                        .unwrap_or_else(|| derived_id(trigger, &name)),
                    dependency_problems: dependency_problems(&self.hooks_dir, &dependencies),
                    name,
                    trigger,
                    file: rel,
                    script,
                    enabled: entry.is_none_or(|e| e.enabled),
                    dependencies,
                    order: entry.map_or(0, |e| e.order),
                    timeout_ms: entry.and_then(|e| e.timeout_ms),
                    on_error: entry.map_or(OnError::Deny, |e| e.on_error),
                    clients: entry.and_then(|e| e.clients.clone()),
                    routes: entry.and_then(|e| e.routes.clone()),
                    max_concurrency: entry.and_then(|e| e.max_concurrency),
                    secrets: entry
                        .map(|e| e.secrets.keys().cloned().collect())
                        .unwrap_or_default(),
                    has_entry: entry.is_some(),
                });
            }
            // Run order, as the generation sorts them.
            of_trigger.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.file.cmp(&b.file)));
            hooks.extend(of_trigger);
        }
        Ok(Snapshot {
            text,
            doc,
            config,
            hooks,
        })
    }

    /// Compile `script` as `<trigger>/<name>.js` and evaluate it once, exactly as a reload
    /// would; nothing is left on disk. The candidate is staged beside where it will live (so its
    /// relative `require`s resolve the same) under a dot name, which neither discovery nor the
    /// reload fingerprint looks at.
    fn check_script(
        &self,
        config: &Config,
        trigger: Trigger,
        name: &str,
        script: &str,
    ) -> Result<()> {
        let dir = self.hooks_dir.join(trigger.id());
        std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
        let staged_name = format!(
            ".{name}.js.{}.check",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let staged = dir.join(&staged_name);
        std::fs::write(&staged, script).map_err(|e| io_error(&staged, e))?;
        let result = (|| {
            let mut builder = ProgramBuilder::new(&self.hooks_dir);
            let program = builder
                .build(&staged)
                .map_err(|errors| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
            let hook = Hook::standalone(
                format!("{}/{name}", trigger.id()),
                trigger,
                staged.clone(),
                Duration::from_millis(config.hooks.timeout_ms),
                BTreeMap::new(),
                program,
            );
            match hook.probed(&config.hooks) {
                Ok(_) => Ok(()),
                Err(problem) => Err(vec![problem]),
            }
        })();
        let _ = std::fs::remove_file(&staged);
        result.map_err(|problems| {
            let shown = format!("{name}.js");
            StoreError::Script(
                problems
                    .iter()
                    .map(|p| p.replace(&staged_name, &shown))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// Write the secret files, then the entry naming them (the files exist before a reload can
    /// read the entry). A value is written followed by one `\n`, which the secret reader drops.
    fn store_secrets(
        &self,
        mut snap: Snapshot,
        hook: &HookRecord,
        secrets: &BTreeMap<String, String>,
    ) -> Result<()> {
        let dir = self.secrets_abs().join(&hook.id);
        create_private_dir(&self.secrets_abs())?;
        create_private_dir(&dir)?;
        for (name, value) in secrets {
            let mut bytes = value.clone().into_bytes();
            bytes.push(b'\n');
            write_atomic(&dir.join(name), &bytes, Some(0o600))?;
        }
        {
            let entry = entry_mut(&mut snap.doc, hook)?;
            if entry.get("secrets").and_then(Item::as_table_like).is_none() {
                entry.insert(
                    "secrets",
                    Item::Value(Value::InlineTable(InlineTable::new())),
                );
            }
            let table = entry
                .get_mut("secrets")
                .and_then(Item::as_table_like_mut)
                .expect("inserted above");
            for name in secrets.keys() {
                let file = rel_str(&self.secrets_dir.join(&hook.id).join(name));
                let mut source = InlineTable::new();
                source.insert("file", Value::from(file));
                table.insert(name, Item::Value(Value::InlineTable(source)));
            }
        }
        let config = self.stage_config(&snap.text, &snap.doc)?;
        let changed = config.is_some();
        self.commit_config(config)?;
        if !changed {
            // Only values changed, in files outside the watched folders: rewrite the
            // configuration's same bytes so the watcher looks now rather than at its next rescan
            // (the reload fingerprint includes the secret files' contents).
            write_atomic(&self.config_path, snap.text.as_bytes(), None)
                .map_err(|e| self.read_only_or(e))?;
        }
        Ok(())
    }

    /// Stage the edited configuration if it differs from what was read, after checking that it
    /// still loads; `None`: unchanged.
    fn stage_config(&self, before: &str, doc: &DocumentMut) -> Result<Option<Staged>> {
        let text = doc.to_string();
        if text == before {
            return Ok(None);
        }
        if let Err(e) = Config::parse(&self.config_path, &text, &|k| std::env::var(k).ok()) {
            return Err(StoreError::Invalid(format!(
                "the change would make the configuration invalid: {e}"
            )));
        }
        stage(&self.config_path, text.as_bytes(), None)
            .map(Some)
            .map_err(|e| self.read_only_or(e))
    }

    /// Put a staged configuration in place.
    fn commit_config(&self, staged: Option<Staged>) -> Result<()> {
        match staged {
            Some(s) => s.commit().map_err(|e| self.read_only_or(e)),
            None => Ok(()),
        }
    }

    fn read_only_or(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Io(error) => StoreError::ReadOnly {
                file: self.config_path.clone(),
                error,
            },
            other => other,
        }
    }

    fn stage_hook_file(&self, rel: &Path, script: &str) -> Result<Staged> {
        let path = self.hooks_dir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        stage(&path, script.as_bytes(), None).map_err(|e| match e {
            StoreError::Io(error) => StoreError::ReadOnly { file: path, error },
            other => other,
        })
    }
}

fn find<'a>(hooks: &'a [HookRecord], id: &str) -> Result<&'a HookRecord> {
    hooks
        .iter()
        .find(|h| h.id == id)
        .ok_or(StoreError::NotFound)
}

/// The id of a hook whose entry names none: `hk-` and 20 hex digits of SHA-256 of
/// `<triggerId>/<name>`, so it is the same at every start. A rename writes the id into the entry.
pub fn derived_id(trigger: Trigger, name: &str) -> String {
    let digest = Sha256::digest(format!("{}/{name}", trigger.id()).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("hk-{}", &hex[..20])
}

fn rel_file(trigger: Trigger, name: &str) -> PathBuf {
    PathBuf::from(trigger.id()).join(format!("{name}.js"))
}

fn rel_str(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

/// Auth0's name pattern: `^[a-zA-Z0-9]([ \-a-zA-Z0-9]*[a-zA-Z0-9])?$`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b' ' || *c == b'-';
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(inner)
}

fn check_name(name: &str) -> Result<()> {
    if valid_name(name) {
        return Ok(());
    }
    Err(StoreError::Invalid(format!(
        "Payload validation error: 'String does not match pattern ^[a-zA-Z0-9]([ \\-a-zA-Z0-9]*[a-zA-Z0-9])?$: {name}' on property name."
    )))
}

fn check_script_size(script: &str) -> Result<()> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(StoreError::Invalid(format!(
            "Payload validation error: 'String is too long ({} bytes), maximum {MAX_SCRIPT_BYTES} (100 KiB)' on property script.",
            script.len()
        )));
    }
    Ok(())
}

/// npm's shape: `name` or `@scope/name`, neither part starting with `.` (so no `..`, and no path
/// outside `node_modules` when the name is looked up there).
fn valid_package_name(name: &str) -> bool {
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(scoped) => scoped.split('/').collect(),
        None => vec![name],
    };
    let expected = if name.starts_with('@') { 2 } else { 1 };
    parts.len() == expected
        && parts
            .iter()
            .all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains('/'))
}

fn check_dependencies(deps: &BTreeMap<String, String>) -> Result<()> {
    for (name, version) in deps {
        let ok_name = !name.is_empty()
            && name.len() <= 214
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"@/._-".contains(&c))
            && valid_package_name(name);
        if !ok_name || version.is_empty() || version.len() > 256 {
            return Err(StoreError::Invalid(format!(
                "Payload validation error: 'Invalid dependency {name:?} = {version:?}' on property dependencies."
            )));
        }
    }
    Ok(())
}

/// A secret name becomes a file name: letters, digits, `_`, `-` and `.`, not starting with `.`.
fn check_secrets(secrets: &BTreeMap<String, String>) -> Result<()> {
    if secrets.is_empty() || secrets.len() > MAX_SECRETS {
        return Err(StoreError::Invalid(format!(
            "Payload validation error: 'between 1 and {MAX_SECRETS} secrets are expected'."
        )));
    }
    for (name, value) in secrets {
        let ok = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
        if !ok {
            return Err(StoreError::Invalid(format!(
                "Payload validation error: 'invalid secret name {name:?}: letters, digits, _, - and . only, not starting with .'."
            )));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(StoreError::Invalid(format!(
                "Payload validation error: 'the value of {name} is longer than {MAX_SECRET_BYTES} bytes'."
            )));
        }
    }
    Ok(())
}

/// `dependencies` against `<hooks dir>/node_modules`: what is missing or at another major version.
pub fn dependency_problems(hooks_dir: &Path, deps: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, wanted) in deps {
        let manifest = hooks_dir
            .join("node_modules")
            .join(name)
            .join("package.json");
        let installed = std::fs::read_to_string(&manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_owned));
        match installed {
            None => out.push(format!(
                "{name}@{wanted} is not installed: run `npm install {name}@{wanted}` in the hooks folder"
            )),
            Some(v) => {
                if let (Some(a), Some(b)) = (major(wanted), major(&v)) {
                    if a != b {
                        out.push(format!(
                            "{name}: {wanted} is wanted, {v} is installed (another major version)"
                        ));
                    }
                }
            }
        }
    }
    out
}

fn major(v: &str) -> Option<u64> {
    let v = v.trim_start_matches(|c: char| "^~=v> ".contains(c));
    v.split('.').next()?.parse().ok()
}

/// The `[[hooks.hook]]` array, created (under an implicit `[hooks]`) when absent.
fn entries_mut(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables> {
    let root = doc.as_table_mut();
    if !root.contains_key("hooks") {
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert("hooks", Item::Table(t));
    }
    let hooks = root
        .get_mut("hooks")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| {
            StoreError::Config(
                "hookgate.toml: `hooks` is not a [hooks] table; the API can only edit `[hooks]` written as a table".into(),
            )
        })?;
    if !hooks.contains_key("hook") {
        hooks.insert("hook", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    hooks
        .get_mut("hook")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| {
            StoreError::Config(
                "hookgate.toml: `hooks.hook` is not written as [[hooks.hook]] tables; the API edits only that form".into(),
            )
        })
}

fn entry_index(doc: &mut DocumentMut, file: &Path) -> Result<Option<usize>> {
    let want = rel_str(file);
    Ok(entries_mut(doc)?
        .iter()
        .position(|t| t.get("file").and_then(Item::as_str) == Some(want.as_str())))
}

/// The hook's entry; one is added (with the hook's id) when it has none. Nothing else is set, so
/// the hook keeps running as it did (a file without an entry is enabled).
fn entry_mut<'a>(doc: &'a mut DocumentMut, hook: &HookRecord) -> Result<&'a mut Table> {
    let index = match entry_index(doc, &hook.file)? {
        Some(i) => i,
        None => {
            let mut t = Table::new();
            t.insert("id", toml_edit::value(hook.id.clone()));
            t.insert("file", toml_edit::value(rel_str(&hook.file)));
            let entries = entries_mut(doc)?;
            entries.push(t);
            entries.len() - 1
        }
    };
    Ok(entries_mut(doc)?
        .get_mut(index)
        .expect("the index was just found"))
}

fn set_opt(entry: &mut Table, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            entry.insert(key, Item::Value(v));
        }
        None => {
            entry.remove(key);
        }
    }
}

fn string_table(map: &BTreeMap<String, String>) -> InlineTable {
    let mut t = InlineTable::new();
    for (k, v) in map {
        t.insert(k, Value::from(v.as_str()));
    }
    t
}

fn string_array(list: &[String]) -> Value {
    let mut a = Array::new();
    for s in list {
        a.push(s.as_str());
    }
    Value::Array(a)
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            wrote();
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(path, e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io_error(dir, e))
}

/// Replace `path` whole: a temporary file in the same folder (so the rename is atomic), written,
/// fsync'd, renamed over it, and the folder fsync'd. A reader sees the old bytes or the new ones,
/// never a mix. `mode`: for a new file; an existing file's permissions are kept.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<()> {
    stage(path, bytes, mode)?.commit()
}

/// A file's next content, written and fsync'd beside it under a dot name (which discovery and the
/// reload fingerprint skip), not yet in place: [`Staged::commit`] renames it over the file. A
/// change staging all its files first and then committing them one after the other leaves a
/// reload only microseconds to see half of it. Dropped uncommitted, the temporary file goes.
#[must_use]
pub struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    done: bool,
}

pub fn stage(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<Staged> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.tmp",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .ok()
        .or(mode)
        .unwrap_or(0o644);
    let staged = Staged {
        tmp,
        path: path.to_path_buf(),
        done: false,
    };
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&staged.tmp)?;
        // `mode` is masked by the umask at creation; set it exactly.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    result.map_err(|e| io_error(path, e))?;
    Ok(staged)
}

impl Staged {
    /// Put the staged content in place (rename, then fsync the folder).
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.path).map_err(|e| io_error(&self.path, e))?;
        self.done = true;
        wrote();
        if let Ok(d) = std::fs::File::open(self.path.parent().unwrap_or(Path::new("."))) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests;
