//! The `[hooks]` table of hookgate.toml: where hooks live, the sandbox limits, and per-hook settings.
//!
//! Owns: the configuration's shape and defaults, and which of its settings need a restart
//! ([`HooksConfig::pin_boot`]). Must not touch: the filesystem (discovery reads it) or secrets'
//! values (resolved when a generation loads, through [`super::secrets::read_secret`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::keep;
use super::secrets::SecretSource;

/// `[hooks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HooksConfig {
    /// The hooks folder, relative to the configuration file's folder. Default `hooks`.
    pub dir: PathBuf,
    /// JS workers in the pool. Default: the number of cores.
    pub workers: Option<usize>,
    /// The pool grows up to this many workers while every worker is busy (running a hook's JS
    /// — a CPU loop, a long computation — or holding `calls_per_worker` calls) and a call waits:
    /// such hooks then cost the others CPU time, which the OS shares, not their turn.
    /// Default: 4 × `workers`.
    pub max_workers: Option<usize>,
    /// Heap limit of each worker's QuickJS runtime, MiB. Generous on purpose: QuickJS misbehaves
    /// under tight limits. Default 256.
    pub memory_limit_mb: usize,
    /// JS stack limit of each worker, KiB. Default 1024.
    pub stack_limit_kb: usize,
    /// Timeout of a hook without its own `timeout_ms`. Default 20000, as Auth0.
    pub timeout_ms: u64,
    /// A hook result larger than this (as JSON) is refused. Default 1 MiB.
    pub max_response_bytes: usize,
    /// Console output kept per call; beyond it lines are dropped (with one warning). Default 64 KiB.
    pub max_log_bytes: usize,
    /// A call no worker has started within this many milliseconds (every worker full, or the
    /// hook at its `max_concurrency`) is answered 503 (`HookError::Overloaded`) and counted in
    /// `/metrics`. Default 1000.
    pub queue_timeout_ms: u64,
    /// Calls one worker holds at once: while some wait on outbound requests or timers, it runs
    /// others. Default 64.
    pub calls_per_worker: usize,
    /// Calls of one hook in progress at once, unless the hook sets `max_concurrency`, so one
    /// hook cannot take every worker. Default: half of the pool's capacity
    /// (`workers` × `calls_per_worker` / 2).
    pub max_concurrency_per_hook: Option<usize>,
    /// CPU time, in milliseconds, one call's JS may use — its invocation, callbacks, timers and
    /// completions, before or after cb — before its hook is treated as hogging (and the work its
    /// calls leave after cb may use as much per second, all calls together): its later calls
    /// then run on low-priority workers, and what its calls left after cb on the shared workers
    /// stops. Default 50.
    pub call_cpu_ms: u64,
    /// Outbound requests one call may have in flight; more wait for a slot (within the hook's
    /// timeout), as behind an HTTP agent's `maxSockets`. Default 32.
    pub max_requests_per_call: usize,
    /// `[hooks.egress]` (formerly `[hooks.fetch]`, still accepted): every outbound request of a
    /// hook — `fetch`, `http`/`https` and the packages built on them.
    #[serde(alias = "fetch")]
    pub egress: EgressConfig,
    /// `[[hooks.hook]]`: settings of individual hook files.
    pub hook: Vec<HookSettings>,
    /// `[[hooks.module]]`: Actions Modules' settings (their secrets). A module is the folder
    /// `<hooks dir>/modules/<name>/` (or the file `modules/<name>.js`), loaded with
    /// `require("actions:<name>")`; one without settings has no secrets.
    pub module: Vec<ModuleSettings>,
    /// Hot reload: watch the hooks folder and the configuration file for changes. Default true.
    pub watch: bool,
    /// Hot reload: rescan this often even without a change event (filesystems without events,
    /// secret files outside the watched folders). 0 turns it off. Default 10.
    pub rescan_secs: u64,
    /// Hot reload: wait until the files have been quiet this long before rebuilding, so a
    /// save made of several steps is read once, whole. Default 20.
    pub debounce_ms: u64,
    /// What `process.version` says (`process.versions.node` and friends follow), for hooks and
    /// packages that check it: Auth0's Runner ran Node 8, then 12 (`"v12.22.12"`). Only the
    /// description changes, not the APIs. Default `"v20.11.1"`.
    #[serde(deserialize_with = "node_version")]
    pub node_version: String,
}

/// `v<major>.<minor>.<patch>`, as `process.version` reads.
fn node_version<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    let digits = text.strip_prefix('v').unwrap_or_default();
    let parts: Vec<&str> = digits.split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(serde::de::Error::custom(format!(
            "node_version `{text}` is not a Node version (expected e.g. \"v12.22.12\")"
        )));
    }
    Ok(text)
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            dir: PathBuf::from("hooks"),
            workers: None,
            max_workers: None,
            memory_limit_mb: 256,
            stack_limit_kb: 1024,
            timeout_ms: 20_000,
            max_response_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            queue_timeout_ms: 1000,
            calls_per_worker: 64,
            max_concurrency_per_hook: None,
            max_requests_per_call: 32,
            call_cpu_ms: 50,
            egress: EgressConfig::default(),
            hook: Vec::new(),
            module: Vec::new(),
            watch: true,
            rescan_secs: 10,
            debounce_ms: 20,
            node_version: "v20.11.1".into(),
        }
    }
}

impl HooksConfig {
    /// Keep the running values of what the engine and the watcher were built from once: the
    /// worker pool and its sandbox (workers, memory and stack limits, result and log limits, the
    /// queue and its caps, `[hooks.egress]`, `node_version`, which contexts read when they are
    /// made), and the watcher's own settings (`dir`, `watch`, `rescan_secs`, `debounce_ms`).
    /// `timeout_ms` and `[[hooks.hook]]` apply live.
    pub fn pin_boot(&mut self, running: &Self, changed: &mut Vec<String>) {
        macro_rules! keep {
            ($($field:ident),+) => {
                $(keep(
                    changed,
                    concat!("hooks.", stringify!($field)),
                    &mut self.$field,
                    &running.$field,
                );)+
            };
        }
        keep!(
            dir,
            workers,
            memory_limit_mb,
            stack_limit_kb,
            max_response_bytes,
            max_log_bytes,
            queue_timeout_ms,
            calls_per_worker,
            max_workers,
            call_cpu_ms,
            max_concurrency_per_hook,
            max_requests_per_call,
            egress,
            watch,
            rescan_secs,
            debounce_ms,
            node_version
        );
    }
}

/// `[hooks.egress]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Hosts hooks may reach: `api.example.com` or `*.example.com`. Absent: any host. Checked
    /// against the host the hook named, before any redirection.
    pub allow_hosts: Option<Vec<String>>,
    /// Host -> base URL (`"api.twilio.com" = "http://127.0.0.1:9100"`): requests a hook makes to
    /// that host go to the base URL instead, path and query kept, `Host` header still the host the
    /// hook named. For trying hooks against local stub servers without editing them.
    pub redirect: BTreeMap<String, RedirectTarget>,
    /// A response body larger than this fails the request. Default 10 MiB.
    pub max_body_bytes: usize,
    /// Outbound requests in flight at once, for the whole process (all hooks, all calls). One
    /// more waits for a slot until its hook's timeout. Keeps a hook opening thousands of
    /// requests from using up the file descriptors hookgate needs to accept connections.
    /// Default 512.
    pub max_concurrent: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            allow_hosts: None,
            redirect: BTreeMap::new(),
            max_body_bytes: 10 << 20,
            max_concurrent: 512,
        }
    }
}

/// Where a redirected host's requests go: `http(s)://host[:port]`, nothing after the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
}

impl<'de> Deserialize<'de> for RedirectTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = |why: &str| {
            serde::de::Error::custom(format!(
                "`{text}` is not a redirect target: {why} (expected e.g. \"http://127.0.0.1:9100\")"
            ))
        };
        let u = url::Url::parse(&text).map_err(|e| bad(&e.to_string()))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
            return Err(bad("only scheme, host and port are used; remove the path"));
        }
        Ok(RedirectTarget {
            scheme: u.scheme().to_owned(),
            host: u.host_str().ok_or_else(|| bad("no host"))?.to_owned(),
            port: u.port(),
        })
    }
}

/// `[[hooks.hook]]`: one hook file's settings. A file without an entry runs with the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSettings {
    /// The hook's id in the management API (stable across renames): letters, digits and `-`, as
    /// Auth0's ids. Absent: derived from the file's path.
    #[serde(default, deserialize_with = "hook_id")]
    pub id: Option<String>,
    /// Relative to the hooks folder, e.g. `credentials-exchange/add-claims.js`.
    pub file: PathBuf,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Run order within the trigger, lowest first; ties run in file-name order. Default 0.
    #[serde(default)]
    pub order: i64,
    /// Default: `[hooks] timeout_ms` (20000).
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub on_error: OnError,
    /// `NAME = { env = "VAR" }` or `NAME = { file = "/run/secrets/x" }`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Run only for these client ids. Absent: every client.
    pub clients: Option<Vec<String>>,
    /// Run only for these routes. Absent: every route.
    pub routes: Option<Vec<String>>,
    /// Calls of this hook in progress at once; more wait for a slot within
    /// `[hooks] queue_timeout_ms`, then get 503. Default `[hooks] max_concurrency_per_hook`.
    pub max_concurrency: Option<usize>,
    /// An Action's `event.configuration`: non-secret settings (`API_URL = "https://..."`), as
    /// Marketplace-style Actions read them. Hooks do not see it.
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    /// npm packages the hook needs (`name = "version"`), as Auth0 kept them. hookgate installs
    /// nothing: `require` resolves from `node_modules` in the hooks folder.
    #[serde(default)]
    pub dependencies: BTreeMap<String, String>,
}

/// `[[hooks.module]]`: one Actions Module's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// The name Actions require it by (`require("actions:<name>")`): letters, digits, `-`, `_`
    /// and `.`, not starting with `.`.
    #[serde(deserialize_with = "module_name")]
    pub name: String,
    /// The module's own secrets, its global `actions.secrets`: `NAME = { env = "VAR" }` or
    /// `NAME = { file = "/run/secrets/x" }`, as a hook's.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
}

/// Whether `name` can name an Actions Module: one path segment of plain characters, so
/// `actions:<name>` never reaches outside `<hooks dir>/modules/`.
pub fn is_module_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn module_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if !is_module_name(&name) {
        return Err(serde::de::Error::custom(format!(
            "module name `{name}` may hold only letters, digits, `-`, `_` and `.`, and not start with `.`"
        )));
    }
    Ok(name)
}

fn hook_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let id = String::deserialize(d)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(serde::de::Error::custom(format!(
            "id `{id}` may hold only letters, digits and `-`"
        )));
    }
    Ok(Some(id))
}

fn yes() -> bool {
    true
}

/// What the request gets when the hook fails, times out or crashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The request is refused with the point's error answer.
    #[default]
    Deny,
    /// The request goes on as if the hook had not run.
    Allow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_version_must_read_like_process_version() {
        let cfg: HooksConfig = toml::from_str("node_version = \"v12.22.12\"").unwrap();
        assert_eq!(cfg.node_version, "v12.22.12");
        assert_eq!(HooksConfig::default().node_version, "v20.11.1");
        for bad in ["12.22.12", "v12", "v12.x.1", ""] {
            let err = toml::from_str::<HooksConfig>(&format!("node_version = {bad:?}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("is not a Node version"), "{bad}: {err}");
        }
    }

    #[test]
    fn parses_a_full_hooks_table() {
        let cfg: HooksConfig = toml::from_str(
            r#"
            dir = "my-hooks"
            workers = 3
            [egress]
            allow_hosts = ["*.slack.com"]
            redirect = { "hooks.slack.com" = "http://127.0.0.1:9100" }
            [[hook]]
            file = "credentials-exchange/add-claims.js"
            order = 2
            timeout_ms = 500
            on_error = "allow"
            clients = ["abc"]
            max_concurrency = 4
            secrets = { TOKEN = { env = "MY_TOKEN" }, KEY = { file = "/run/key" } }
            "#,
        )
        .unwrap();
        assert_eq!(cfg.workers, Some(3));
        assert_eq!(cfg.timeout_ms, 20_000);
        assert_eq!(
            cfg.egress.redirect["hooks.slack.com"],
            RedirectTarget {
                scheme: "http".into(),
                host: "127.0.0.1".into(),
                port: Some(9100)
            }
        );
        let h = &cfg.hook[0];
        assert!(h.enabled);
        assert_eq!(h.on_error, OnError::Allow);
        assert_eq!(h.max_concurrency, Some(4));
        assert_eq!(cfg.queue_timeout_ms, 1000);
        assert_eq!(cfg.calls_per_worker, 64);
        assert_eq!(cfg.max_requests_per_call, 32);
        assert_eq!(h.secrets["TOKEN"], SecretSource::Env("MY_TOKEN".into()));
        assert_eq!(h.secrets["KEY"], SecretSource::File("/run/key".into()));
    }

    #[test]
    fn a_hook_id_holds_only_letters_digits_and_dashes() {
        let cfg: HooksConfig = toml::from_str("[[hook]]\nfile = 'a.js'\nid = 'hk-1A'").unwrap();
        assert_eq!(cfg.hook[0].id.as_deref(), Some("hk-1A"));
        let cfg: HooksConfig = toml::from_str("[[hook]]\nfile = 'a.js'").unwrap();
        assert_eq!(cfg.hook[0].id, None);
        let e = toml::from_str::<HooksConfig>("[[hook]]\nfile = 'a.js'\nid = 'a/b'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("only letters, digits"), "{e}");
    }

    #[test]
    fn rejects_unknown_keys() {
        assert!(toml::from_str::<HooksConfig>("dri = 'x'").is_err());
        assert!(toml::from_str::<HooksConfig>("[[hook]]\nfile = 'a.js'\ntimeout = 3").is_err());
    }

    #[test]
    fn the_old_fetch_table_still_configures_egress() {
        let cfg: HooksConfig = toml::from_str("[fetch]\nallow_hosts = ['a.example']").unwrap();
        assert_eq!(cfg.egress.allow_hosts, Some(vec!["a.example".to_owned()]));
    }

    #[test]
    fn a_redirect_target_with_a_path_or_another_scheme_is_refused_with_the_reason() {
        let e = toml::from_str::<HooksConfig>(
            "[egress.redirect]\n'a.example' = 'http://127.0.0.1:1/x'",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("remove the path"), "{e}");
        let e = toml::from_str::<HooksConfig>("[egress.redirect]\n'a.example' = 'ftp://h'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("http or https"), "{e}");
    }
}
