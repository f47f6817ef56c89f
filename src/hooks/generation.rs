//! Discovery: from the hooks folder and `[[hooks.hook]]` to one immutable, compiled [`Generation`].
//!
//! Owns: scanning `<dir>/<trigger-id>/*.js`, matching settings to files, resolving secrets
//! (hooks' and `[[hooks.module]]` Actions Modules'; `modules/` itself is never scanned for hooks),
//! compiling every enabled hook (with everything it requires, through the engine's
//! `ProgramBuilder`), evaluating each once in a scratch runtime (`probe`), reporting every
//! problem at once, and choosing a trigger's hooks for a request (targeting, order).
//! Must not touch: running hooks (the engine runs each hook's `Script`), requests (the points
//! build the arguments) or swapping generations (hot reload does).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::probe::Probed;
use crate::engine::program::{Program, ProgramBuilder};
use crate::engine::Script;
use crate::runs::{hook_metrics, HookStats};

use super::actions::{CacheScope, Kind};

use crate::config::secrets::read_secret;
use crate::config::{HooksConfig, OnError, Trigger};

/// One loaded hook file, ready to run: the [`Script`] the engine runs (name, file, timeout,
/// `max_concurrency`, program; reached through `Deref`, so `hook.name` and
/// `engine.call(&hook, ...)` work as on a script) plus what points and discovery read.
#[derive(Debug)]
pub struct Hook {
    script: Arc<Script>,
    /// The hook's stable id (`hk-` and 20 hex digits, see [`hook_id`]): run records and the
    /// management API name it by this.
    pub id: String,
    pub trigger: Trigger,
    pub order: i64,
    pub on_error: OnError,
    pub clients: Option<Vec<String>>,
    pub routes: Option<Vec<String>>,
    pub(crate) secrets: BTreeMap<String, String>,
    /// `[[hooks.hook]] configuration`: an Action's `event.configuration`.
    pub(crate) configuration: BTreeMap<String, String>,
    /// A Hook or an Auth0 Action (known once its module has been evaluated at load).
    pub kind: Kind,
    /// Its calls by outcome and their latency, for `/metrics` (shared by every generation that
    /// loads a hook of this name).
    pub stats: Arc<HookStats>,
}

/// A hook's stable id: `id` from its `[[hooks.hook]]` settings when set, else `hk-` and the
/// first 20 hex digits of the SHA-256 of `<trigger id>/<name>` (the management API's rule, so
/// both name a hook alike, across restarts and reloads).
pub fn hook_id(trigger: Trigger, name: &str, explicit: Option<&str>) -> String {
    use sha2::Digest as _;
    if let Some(id) = explicit.filter(|id| !id.is_empty()) {
        return id.to_owned();
    }
    let digest = sha2::Sha256::digest(format!("{}/{name}", trigger.id()).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("hk-{}", &hex[..20])
}

impl std::ops::Deref for Hook {
    type Target = Arc<Script>;
    fn deref(&self) -> &Arc<Script> {
        &self.script
    }
}

impl Hook {
    /// `{ "secrets": {...} }`: the value the point code puts at `context.webtask` (an Action's
    /// adapter also reads its `configuration` there).
    pub fn webtask(&self) -> serde_json::Value {
        match self.kind {
            Kind::Hook => serde_json::json!({ "secrets": self.secrets }),
            Kind::Action => {
                serde_json::json!({ "secrets": self.secrets, "configuration": self.configuration })
            }
        }
    }

    /// Build a hook outside of a generation (the CLI's `hookgate test`, benchmarks).
    pub fn standalone(
        name: String,
        trigger: Trigger,
        file: PathBuf,
        timeout: Duration,
        secrets: BTreeMap<String, String>,
        program: Program,
    ) -> Hook {
        let stem = name.rsplit('/').next().unwrap_or(&name).to_owned();
        Hook {
            id: hook_id(trigger, &stem, None),
            stats: hook_metrics::stats(&name, trigger),
            script: Arc::new(Script::new(name, file, timeout, None, program)),
            trigger,
            order: 0,
            on_error: OnError::Deny,
            clients: None,
            routes: None,
            secrets,
            configuration: BTreeMap::new(),
            kind: Kind::Hook,
        }
    }

    /// Evaluate this hook's module once, as a generation's load does: this hook (a Hook), its
    /// Action form, or the problem that keeps it from working (`hookgate test`, the Runner).
    pub fn probed(self, cfg: &HooksConfig) -> Result<Hook, String> {
        self.probed_with(cfg, CacheScope::Trigger)
    }

    /// [`Hook::probed`] for the Runner: an Action gets the Runner's own `api.cache`.
    pub fn probed_for_runner(self, cfg: &HooksConfig) -> Result<Hook, String> {
        self.probed_with(cfg, CacheScope::Runner)
    }

    fn probed_with(self, cfg: &HooksConfig, cache: CacheScope) -> Result<Hook, String> {
        let this = Arc::new(self);
        let probed = super::probe::probe(cfg, std::slice::from_ref(&this));
        let hook = Arc::try_unwrap(this).expect("the probe keeps no reference");
        match probed.into_iter().next() {
            Some(Probed::Member) => hook.as_action(cache),
            Some(Probed::Problem(problem)) => Err(problem),
            Some(Probed::Function) | None => Ok(hook),
        }
    }

    /// This hook run as an Action: its program behind the Actions adapter.
    fn as_action(&self, cache: CacheScope) -> Result<Hook, String> {
        let program =
            super::actions::adapt(&self.script.program, self.trigger, cache).map_err(|e| {
                format!(
                    "{}: cannot build the Actions adapter: {e}",
                    self.file.display()
                )
            })?;
        Ok(Hook {
            id: self.id.clone(),
            stats: self.stats.clone(),
            script: Arc::new(Script::new(
                self.script.name.clone(),
                self.script.file.clone(),
                self.script.timeout,
                self.script.max_concurrency,
                program,
            )),
            trigger: self.trigger,
            order: self.order,
            on_error: self.on_error,
            clients: self.clients.clone(),
            routes: self.routes.clone(),
            secrets: self.secrets.clone(),
            configuration: self.configuration.clone(),
            kind: Kind::Action,
        })
    }

    /// Does this hook run for a request of `client_id` on `route`?
    ///
    /// `client_id` is the client the request is known to come from; `None` or `""` means unknown.
    /// A hook limited to clients never runs for an unknown client: a request whose client
    /// hookgate cannot name must not borrow a hook meant for another (issue 17). `route: None`
    /// means "any route" (tools and tests that list hooks); requests always name theirs.
    fn targets(&self, client_id: Option<&str>, route: Option<&str>) -> bool {
        let client_ok = match (&self.clients, client_id) {
            (None, _) => true,
            (Some(list), Some(id)) if !id.is_empty() => list.iter().any(|x| x == id),
            (Some(_), _) => false,
        };
        client_ok && self.targets_route(route)
    }

    /// Does this hook run on `route` for some client? (Used before the client is known.)
    fn targets_route(&self, route: Option<&str>) -> bool {
        match (&self.routes, route) {
            (Some(list), Some(r)) => list.iter().any(|x| x == r),
            _ => true,
        }
    }
}

/// `[[hooks.module]]`: each Actions Module's secrets, read now (a generation holds them, as it
/// holds hooks' secrets). A setting for a module that is not in `<hooks dir>/modules/` is a
/// problem, as one for a missing hook file is.
fn module_secrets(
    cfg: &HooksConfig,
    base_dir: &Path,
    dir: &Path,
    problems: &mut Vec<String>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    use crate::engine::program::MODULES_DIR;
    let mut out = BTreeMap::new();
    for (i, m) in cfg.module.iter().enumerate() {
        let key = format!("[[hooks.module]] #{} name = {:?}", i + 1, m.name);
        let folder = dir.join(MODULES_DIR);
        if !folder.join(&m.name).is_dir() && !folder.join(format!("{}.js", m.name)).is_file() {
            problems.push(format!(
                "{key}: no such module; a module is {}/{}/ (index.js) or {}/{}.js",
                folder.display(),
                m.name,
                folder.display(),
                m.name
            ));
            continue;
        }
        let mut secrets = BTreeMap::new();
        for (secret, source) in &m.secrets {
            match read_secret(source, base_dir, &|var| std::env::var(var).ok()) {
                Ok(v) => {
                    secrets.insert(secret.clone(), v);
                }
                Err(e) => problems.push(format!("{key} secrets.{secret}: {e}")),
            }
        }
        if out.insert(m.name.clone(), secrets).is_some() {
            problems.push(format!("{key}: this module has settings twice"));
        }
    }
    out
}

/// Every problem that kept a generation from loading, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the hooks could not be loaded:\n  {}", .problems.join("\n  "))]
pub struct LoadError {
    pub problems: Vec<String>,
}

/// One loaded, compiled, validated set of hooks. Immutable.
#[derive(Debug, Default)]
pub struct Generation {
    hooks: HashMap<Trigger, Vec<Arc<Hook>>>,
    /// Files found with `enabled = false`.
    pub disabled: Vec<String>,
    /// Non-fatal findings (e.g. a package's optional dependency that is not installed).
    pub warnings: Vec<String>,
    /// Whether any loaded hook is an Action: decided once at load, read per request.
    has_actions: bool,
}

impl Generation {
    /// Scan `<dir>/<trigger-id>/*.js`, apply the settings, compile every enabled hook to bytecode
    /// and resolve every `require('...')` literal now. `base_dir` is the configuration file's folder.
    pub fn load(cfg: &HooksConfig, base_dir: &Path) -> Result<Generation, LoadError> {
        let dir: PathBuf = base_dir
            .join(&cfg.dir)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let mut problems = Vec::new();
        if !dir.is_dir() {
            return Err(LoadError {
                problems: vec![format!(
                    "[hooks] dir = {:?}: {} is not a folder",
                    cfg.dir,
                    dir.display()
                )],
            });
        }
        // Files on disk, by their path relative to the hooks folder.
        let mut files: BTreeMap<PathBuf, Trigger> = BTreeMap::new();
        for trigger in Trigger::all() {
            let tdir = dir.join(trigger.id());
            let Ok(entries) = std::fs::read_dir(&tdir) else {
                continue;
            };
            for entry in entries.flatten() {
                let p = entry.path();
                if p.extension().is_some_and(|e| e == "js") && p.is_file() {
                    files.insert(PathBuf::from(trigger.id()).join(entry.file_name()), trigger);
                }
            }
        }
        let mut settings = HashMap::new();
        for (i, s) in cfg.hook.iter().enumerate() {
            let key = format!("[[hooks.hook]] #{} file = {:?}", i + 1, s.file);
            if !files.contains_key(&s.file) {
                problems.push(format!(
                    "{key}: no such hook file; hook files are <hooks dir>/<trigger-id>/<name>.js ({} was looked for)",
                    dir.join(&s.file).display()
                ));
                continue;
            }
            if settings.insert(s.file.clone(), (key.clone(), s)).is_some() {
                problems.push(format!("{key}: this file has settings twice"));
            }
        }
        let modules = module_secrets(cfg, base_dir, &dir, &mut problems);
        let mut builder = ProgramBuilder::new(&dir).with_module_secrets(modules);
        let mut generation = Generation::default();
        for (rel, trigger) in &files {
            let (key, s) = match settings.get(rel) {
                Some((key, s)) => (key.clone(), Some(*s)),
                None => (format!("hook {}", rel.display()), None),
            };
            let stem = rel.file_stem().unwrap_or_default().to_string_lossy();
            let name = format!("{}/{stem}", trigger.id());
            if s.is_some_and(|s| !s.enabled) {
                generation.disabled.push(name);
                continue;
            }
            let mut secrets = BTreeMap::new();
            for (secret, source) in s.map(|s| &s.secrets).into_iter().flatten() {
                match read_secret(source, base_dir, &|var| std::env::var(var).ok()) {
                    Ok(v) => {
                        secrets.insert(secret.clone(), v);
                    }
                    Err(e) => problems.push(format!("{key} secrets.{secret}: {e}")),
                }
            }
            // An empty file is what a reader sees between an in-place write's truncate and its
            // write; it can never be a hook (module.exports must be a function).
            if std::fs::read(dir.join(rel)).is_ok_and(|b| b.trim_ascii().is_empty()) {
                problems.push(format!(
                    "{}:1:1: the file is empty; a hook file must set module.exports = function (...) {{ ... }}",
                    dir.join(rel).display()
                ));
                continue;
            }
            let program = match builder.build(&dir.join(rel)) {
                Ok(p) => p,
                Err(errors) => {
                    problems.extend(errors.iter().map(|e| e.to_string()));
                    continue;
                }
            };
            let hook = Hook {
                // Settings may name the id (the management API keeps it across renames).
                id: hook_id(*trigger, &stem, s.and_then(|s| s.id.as_deref())),
                stats: hook_metrics::stats(&name, *trigger),
                script: Arc::new(Script::new(
                    name,
                    dir.join(rel),
                    Duration::from_millis(s.and_then(|s| s.timeout_ms).unwrap_or(cfg.timeout_ms)),
                    s.and_then(|s| s.max_concurrency),
                    program,
                )),
                trigger: *trigger,
                order: s.map_or(0, |s| s.order),
                on_error: s.map_or(OnError::Deny, |s| s.on_error),
                clients: s.and_then(|s| s.clients.clone()),
                routes: s.and_then(|s| s.routes.clone()),
                secrets,
                configuration: s.map(|s| s.configuration.clone()).unwrap_or_default(),
                kind: Kind::Hook,
            };
            generation
                .hooks
                .entry(*trigger)
                .or_default()
                .push(Arc::new(hook));
        }
        // Every hook that compiled is evaluated once now, so one that cannot work (a top-level
        // throw or endless loop, exports that are neither a function nor an Action's handler)
        // rejects the generation; an Action is put behind its adapter.
        let compiled: Vec<Arc<Hook>> = generation.all_hooks().cloned().collect();
        let probed = super::probe::probe(cfg, &compiled);
        let mut actions = HashMap::new();
        for (hook, p) in compiled.iter().zip(probed) {
            match p {
                Probed::Function => {}
                Probed::Member => match hook.as_action(CacheScope::Trigger) {
                    Ok(action) => {
                        actions.insert(hook.file.clone(), Arc::new(action));
                    }
                    Err(problem) => problems.push(problem),
                },
                Probed::Problem(problem) => problems.push(problem),
            }
        }
        generation.has_actions = !actions.is_empty();
        if !actions.is_empty() {
            for list in generation.hooks.values_mut() {
                for hook in list.iter_mut() {
                    if let Some(action) = actions.remove(&hook.file) {
                        *hook = action;
                    }
                }
            }
        }
        generation.warnings = std::mem::take(&mut builder.warnings);
        for w in &generation.warnings {
            tracing::warn!("{w}");
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        for list in generation.hooks.values_mut() {
            list.sort_by(|a, b| a.order.cmp(&b.order).then_with(|| a.file.cmp(&b.file)));
        }
        Ok(generation)
    }

    /// Enabled hooks of a trigger in run order, filtered by targeting. `client_id: None` is an
    /// unknown client (only hooks without a `clients` list run); `route: None` is any route.
    pub fn hooks_for(
        &self,
        trigger: Trigger,
        client_id: Option<&str>,
        route: Option<&str>,
    ) -> Vec<Arc<Hook>> {
        self.hooks
            .get(&trigger)
            .map(|list| {
                list.iter()
                    .filter(|h| h.targets(client_id, route))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Could any hook of `trigger` run on `route`, whatever the client? Lets a point skip work
    /// it does only to learn the client (verifying the upstream's token) when nothing would run.
    pub fn any_for_route(&self, trigger: Trigger, route: &str) -> bool {
        self.hooks
            .get(&trigger)
            .is_some_and(|list| list.iter().any(|h| h.targets_route(Some(route))))
    }

    /// Whether any loaded hook is an Action.
    pub fn has_actions(&self) -> bool {
        self.has_actions
    }

    /// Every enabled hook, all triggers.
    pub fn all_hooks(&self) -> impl Iterator<Item = &Arc<Hook>> {
        self.hooks.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hook_id_is_hk_and_20_hex_digits_of_the_sha256_of_trigger_and_name_unless_set() {
        assert_eq!(
            hook_id(Trigger::CredentialsExchange, "add-claims", None),
            "hk-5e08720a4d6fd8ee2a5d"
        );
        assert_eq!(
            hook_id(Trigger::CredentialsExchange, "add-claims", Some("hk-mine")),
            "hk-mine"
        );
    }
}
