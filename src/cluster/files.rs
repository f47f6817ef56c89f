//! The files a cluster revision holds, on this replica's disk: what is read to publish a change
//! and what is written to apply one. Keys name them independently of where a replica keeps them:
//!
//! * `hook/<triggerId>/<name>.js` — a hook script, under the hooks folder;
//! * `secret/<hook id>/<NAME>` — a secret file the management API stored, under `[admin]
//!   secrets_dir` (0600, in 0700 folders);
//! * `entries` — the `[[hooks.hook]]` tables of hookgate.toml, as TOML text. The rest of each
//!   replica's hookgate.toml (its listen addresses, `[cluster]`, routes) is its own: applying
//!   `entries` replaces only that array, with `toml_edit`, keeping the file's comments.
//!
//! Nothing else is managed: modules a hook `require`s from outside the trigger folders, and
//! `node_modules`, come with each replica's image (or ConfigMap).
//!
//! Owns: the keys, reading them, applying a change atomically file by file. Must not: talk to
//! Redis, take locks, or reload (the caller does).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table};

use crate::config::{Config, HookSettings, SecretSource, Trigger};

/// Key → content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// One file's change: new content, or `None` for removed.
pub type Change = Vec<(String, Option<Vec<u8>>)>;

pub const ENTRIES: &str = "entries";

/// Where this replica keeps the managed files.
#[derive(Debug, Clone)]
pub struct Paths {
    config: PathBuf,
    /// The configuration's folder: relative `file =` secrets resolve from it.
    base: PathBuf,
    hooks: PathBuf,
    secrets: PathBuf,
}

/// One part of a key (trigger folder, file name, hook id, secret name): what a path may hold
/// on every replica, and nothing that could climb out of a folder.
fn safe_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with('.')
        && part.len() <= 255
        && part
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b" _-.@".contains(&c))
}

impl Paths {
    pub fn of(config: &Config) -> Paths {
        let base = config.base_dir();
        Paths {
            config: std::fs::canonicalize(&config.path).unwrap_or_else(|_| config.path.clone()),
            base: base.to_path_buf(),
            hooks: base.join(&config.hooks.dir),
            secrets: base.join(&config.admin.secrets_dir),
        }
    }

    /// Every managed file as it is now.
    pub fn read(&self) -> anyhow::Result<Files> {
        let mut out = Files::new();
        for trigger in Trigger::all() {
            let Ok(dir) = std::fs::read_dir(self.hooks.join(trigger.id())) else {
                continue;
            };
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !name.ends_with(".js") || !entry.path().is_file() {
                    continue;
                }
                if !safe_part(&name) {
                    // Another replica would refuse the key: publishing it would stop them all.
                    tracing::warn!(file = %entry.path().display(), "cluster: this hook file's name cannot be shared (letters, digits, space, `_-.@` only): it is not published; rename it");
                    continue;
                }
                out.insert(
                    format!("hook/{}/{name}", trigger.id()),
                    std::fs::read(entry.path())?,
                );
            }
        }
        if let Ok(ids) = std::fs::read_dir(&self.secrets) {
            for id in ids.flatten() {
                let id_name = id.file_name().to_string_lossy().into_owned();
                if id_name.starts_with('.') || !id.path().is_dir() {
                    continue;
                }
                if !safe_part(&id_name) {
                    tracing::warn!(folder = %id.path().display(), "cluster: this secrets folder's name cannot be shared: it is not published");
                    continue;
                }
                for file in std::fs::read_dir(id.path())?.flatten() {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') || !file.path().is_file() {
                        continue;
                    }
                    if !safe_part(&name) {
                        tracing::warn!(file = %file.path().display(), "cluster: this secret file's name cannot be shared: it is not published");
                        continue;
                    }
                    out.insert(
                        format!("secret/{id_name}/{name}"),
                        std::fs::read(file.path())?,
                    );
                }
            }
        }
        let text = std::fs::read_to_string(&self.config)?;
        out.insert(ENTRIES.into(), entries_of(&text)?.into_bytes());
        Ok(out)
    }

    /// Why `change` may not be applied or published, one line per problem (empty: it may).
    /// Checks every key and the entries as a whole before anything is written, so a refused
    /// change leaves no file half-written; see [`Paths::entry_problem`] for what an entry may hold.
    pub fn problems(&self, change: &Change) -> Vec<String> {
        let mut out = Vec::new();
        for (key, content) in change {
            if key == ENTRIES {
                if let Some(text) = content {
                    match self.checked_entries(&String::from_utf8_lossy(text)) {
                        Ok((_, refused)) => out.extend(refused),
                        Err(e) => out.push(format!("{e:#}")),
                    }
                }
            } else if let Err(e) = self.path_of(key) {
                out.push(format!("{e:#}"));
            }
        }
        out
    }

    /// The part of `change` that may be applied, and why the rest may not: keys that name no
    /// managed file are left out; in the entries, a refused `[[hooks.hook]]` is replaced by one
    /// that disables its file (so the hook never runs with settings this replica refused), and
    /// entries that do not parse leave this replica's entries as they are.
    pub fn sanitized(&self, change: &Change) -> (Change, Vec<String>) {
        let mut kept = Change::new();
        let mut problems = Vec::new();
        for (key, content) in change {
            if key == ENTRIES {
                let text = content.as_deref().map(String::from_utf8_lossy);
                match self.checked_entries(text.as_deref().unwrap_or("")) {
                    Ok((clean, refused)) => {
                        problems.extend(refused);
                        kept.push((key.clone(), Some(clean.into_bytes())));
                    }
                    Err(e) => problems.push(format!("{e:#}")),
                }
            } else if let Err(e) = self.path_of(key) {
                problems.push(format!("{e:#}"));
            } else {
                kept.push((key.clone(), content.clone()));
            }
        }
        (kept, problems)
    }

    /// The entries with each refused table replaced (see [`Paths::sanitized`]), and the reasons.
    fn checked_entries(&self, text: &str) -> anyhow::Result<(String, Vec<String>)> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| anyhow::anyhow!("the shared [[hooks.hook]] entries are not TOML: {e}"))?;
        let mut problems = Vec::new();
        for (k, _) in doc.iter() {
            if k != "hooks" {
                problems.push(format!(
                    "the shared entries hold `{k}`, not only [[hooks.hook]]"
                ));
            }
        }
        let hooks = doc.get("hooks").and_then(Item::as_table);
        if let Some(h) = hooks {
            for (k, _) in h.iter() {
                if k != "hook" {
                    problems.push(format!(
                        "the shared entries hold `hooks.{k}`, not only [[hooks.hook]]"
                    ));
                }
            }
        }
        let Some(aot) = hooks
            .and_then(|h| h.get("hook"))
            .and_then(Item::as_array_of_tables)
        else {
            return Ok((String::new(), problems));
        };
        let mut clean = toml_edit::ArrayOfTables::new();
        for (i, t) in aot.iter().enumerate() {
            match self.entry_problem(t) {
                None => clean.push(t.clone()),
                Some(why) => {
                    let file = t.get("file").and_then(Item::as_str).unwrap_or("?");
                    problems.push(format!("[[hooks.hook]] #{} (file {file:?}): {why}", i + 1));
                    if hook_file_ok(file) {
                        let mut off = Table::new();
                        off.insert("file", toml_edit::value(file));
                        off.insert("enabled", toml_edit::value(false));
                        clean.push(off);
                    }
                }
            }
        }
        let mut out = DocumentMut::new();
        if !clean.is_empty() {
            let mut hooks = Table::new();
            hooks.set_implicit(true);
            hooks.insert("hook", Item::ArrayOfTables(clean));
            out.insert("hooks", Item::Table(hooks));
        }
        Ok((out.to_string(), problems))
    }

    /// Why one shared `[[hooks.hook]]` table may not be written into this replica's
    /// hookgate.toml. Redis is writable by more than the management API, so an entry may hold
    /// only what the API writes: the settings of `[[hooks.hook]]`, a `file` inside a trigger
    /// folder, and secrets only as `file = "<secrets_dir>/<hook id>/<NAME>"` under this replica's
    /// own secrets folder — never `env =`, never another file (either would let whoever writes
    /// Redis read this replica's keys or environment through a hook).
    fn entry_problem(&self, t: &Table) -> Option<String> {
        let mut d = DocumentMut::new();
        for (k, v) in t.iter() {
            d.insert(k, v.clone());
        }
        let settings: HookSettings = match toml::from_str(&d.to_string()) {
            Ok(s) => s,
            Err(e) => return Some(e.message().to_string()),
        };
        let file = settings.file.to_string_lossy();
        if !hook_file_ok(&file) {
            return Some(format!(
                "`file` must be <triggerId>/<name>.js inside the hooks folder, not {file:?}"
            ));
        }
        for (name, source) in &settings.secrets {
            let path = match source {
                SecretSource::Env(_) => {
                    return Some(format!(
                        "secret {name} reads an environment variable; shared entries may only name files the management API stored"
                    ))
                }
                SecretSource::File(p) => p,
            };
            let inside = !path.components().any(|c| c == Component::ParentDir)
                && self
                    .base
                    .join(path)
                    .strip_prefix(&self.secrets)
                    .ok()
                    .map(|rest| {
                        let parts: Vec<_> = rest.iter().map(|p| p.to_string_lossy()).collect();
                        parts.len() == 2 && parts.iter().all(|p| safe_part(p))
                    })
                    .unwrap_or(false);
            if !safe_part(name) || !inside {
                return Some(format!(
                    "secret {name} names {}, not <secrets_dir>/<hook id>/<NAME> under this replica's secrets folder",
                    path.display()
                ));
            }
        }
        None
    }

    /// Write a change, all of it or nothing: every key and the entries are checked (and the new
    /// hookgate.toml built) before the first file is written. Files first, the entries last (a
    /// reload only follows, but a store read in between then sees no entry naming a file that is
    /// not there yet).
    pub fn apply(&self, change: &Change) -> anyhow::Result<()> {
        let problems = self.problems(change);
        if !problems.is_empty() {
            anyhow::bail!("refused: {}", problems.join("; "));
        }
        let mut entries = None;
        let mut writes = Vec::new();
        for (key, content) in change {
            if key == ENTRIES {
                entries = Some(content.clone().unwrap_or_default());
            } else {
                let (path, secret) = self.path_of(key)?;
                writes.push((path, secret, content));
            }
        }
        let config = match entries {
            Some(entries) => {
                let text = std::fs::read_to_string(&self.config)?;
                let new = with_entries(&text, &String::from_utf8_lossy(&entries))?;
                (new != text).then_some(new)
            }
            None => None,
        };
        for (path, secret, content) in writes {
            match content {
                Some(bytes) => {
                    let dir = path.parent().expect("a managed file is in a folder");
                    std::fs::create_dir_all(dir)?;
                    if secret {
                        for d in [&self.secrets, &dir.to_path_buf()] {
                            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
                        }
                    }
                    write_atomic(&path, bytes, if secret { 0o600 } else { 0o644 })?;
                }
                None => {
                    match std::fs::remove_file(&path) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                    if secret {
                        // The hook's secrets folder goes with its last file, as the store does.
                        let _ = std::fs::remove_dir(path.parent().expect("in a folder"));
                    }
                }
            }
        }
        if let Some(new) = config {
            // Keep the file's own mode (an operator's 0640 stays 0640).
            let mode = std::fs::metadata(&self.config)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0o644);
            write_atomic(&self.config, new.as_bytes(), mode)?;
        }
        Ok(())
    }

    /// The local path of a key; refuses anything that could leave the managed folders (keys come
    /// from Redis, which another party may write).
    fn path_of(&self, key: &str) -> anyhow::Result<(PathBuf, bool)> {
        let safe = safe_part;
        let parts: Vec<&str> = key.split('/').collect();
        let ok = parts.len() == 3 && parts[1..].iter().all(|p| safe(p));
        match (ok, parts.first()) {
            (true, Some(&"hook"))
                if parts[1].parse::<Trigger>().is_ok() && parts[2].ends_with(".js") =>
            {
                let path = self.hooks.join(parts[1]).join(parts[2]);
                debug_assert!(path.components().all(|c| c != Component::ParentDir));
                Ok((path, false))
            }
            (true, Some(&"secret")) => Ok((self.secrets.join(parts[1]).join(parts[2]), true)),
            _ => anyhow::bail!("not a key of a managed file: {key:?}"),
        }
    }
}

/// Whether `file` (a `[[hooks.hook]]` file, `/`-separated) is `<triggerId>/<name>.js`.
fn hook_file_ok(file: &str) -> bool {
    let parts: Vec<&str> = file.split('/').collect();
    parts.len() == 2
        && parts[0].parse::<Trigger>().is_ok()
        && safe_part(parts[1])
        && parts[1].ends_with(".js")
}

/// What changed from `before` to `after`, as a change to apply (or to publish).
pub fn diff(before: &Files, after: &Files) -> Change {
    let mut out = Change::new();
    for (k, v) in after {
        if before.get(k) != Some(v) {
            out.push((k.clone(), Some(v.clone())));
        }
    }
    for k in before.keys() {
        if !after.contains_key(k) {
            out.push((k.clone(), None));
        }
    }
    out
}

/// The `[[hooks.hook]]` tables of a configuration, alone, as TOML text ("" when none).
pub fn entries_of(config_text: &str) -> anyhow::Result<String> {
    let doc: DocumentMut = config_text.parse()?;
    let Some(aot) = doc
        .get("hooks")
        .and_then(|h| h.get("hook"))
        .and_then(Item::as_array_of_tables)
    else {
        return Ok(String::new());
    };
    if aot.is_empty() {
        return Ok(String::new());
    }
    let mut out = DocumentMut::new();
    let mut hooks = Table::new();
    hooks.set_implicit(true);
    let mut clean = toml_edit::ArrayOfTables::new();
    for t in aot.iter() {
        // Positions and comments belong to the file they came from.
        let mut t = t.clone();
        t.decor_mut().clear();
        t.set_position(None);
        clean.push(t);
    }
    hooks.insert("hook", Item::ArrayOfTables(clean));
    out.insert("hooks", Item::Table(hooks));
    Ok(out.to_string())
}

/// `config_text` with its `[[hooks.hook]]` tables replaced by those of `entries`.
pub fn with_entries(config_text: &str, entries: &str) -> anyhow::Result<String> {
    let mut doc: DocumentMut = config_text.parse()?;
    let new: DocumentMut = entries.parse()?;
    let aot = new
        .get("hooks")
        .and_then(|h| h.get("hook"))
        .and_then(Item::as_array_of_tables)
        .cloned()
        .unwrap_or_default();
    let root = doc.as_table_mut();
    if !root.contains_key("hooks") {
        if aot.is_empty() {
            return Ok(doc.to_string());
        }
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert("hooks", Item::Table(t));
    }
    let hooks = root
        .get_mut("hooks")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| anyhow::anyhow!("`hooks` in hookgate.toml is not a [hooks] table"))?;
    if aot.is_empty() {
        hooks.remove("hook");
    } else {
        hooks.insert("hook", Item::ArrayOfTables(aot));
    }
    Ok(doc.to_string())
}

/// Replace `path` whole: a dot-named temporary file beside it (which discovery and the reload
/// fingerprint skip), fsync'd, renamed over it.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.{}.cluster",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_move_between_files_without_their_other_settings() {
        let a = "[server]\nlisten = [\"127.0.0.1:1\"]\n# mine\n[hooks]\ndir = \"hooks\"\n\
                 [[hooks.hook]]\nfile = \"credentials-exchange/a.js\"\nenabled = false\n";
        let b = "[server]\nlisten = [\"127.0.0.1:2\"]\n[hooks]\ndir = \"hooks\"\n";
        let entries = entries_of(a).unwrap();
        assert!(entries.contains("credentials-exchange/a.js"), "{entries}");
        assert!(!entries.contains("127.0.0.1"), "{entries}");
        let b2 = with_entries(b, &entries).unwrap();
        assert!(
            b2.contains("127.0.0.1:2") && b2.contains("enabled = false"),
            "{b2}"
        );
        assert_eq!(entries_of(&b2).unwrap(), entries);
        let b3 = with_entries(&b2, "").unwrap();
        assert_eq!(entries_of(&b3).unwrap(), "");
        assert!(b3.contains("dir = \"hooks\""), "{b3}");
    }

    #[test]
    fn keys_never_leave_the_managed_folders() {
        let p = Paths {
            config: "/x/hookgate.toml".into(),
            base: "/x".into(),
            hooks: "/x/hooks".into(),
            secrets: "/x/secrets".into(),
        };
        assert!(p.path_of("hook/credentials-exchange/a b.js").is_ok());
        assert!(p.path_of("secret/hk-1/API_KEY").unwrap().1);
        for bad in [
            "hook/../etc.js",
            "hook/credentials-exchange/../../x.js",
            "hook/nope/a.js",
            "secret/../x",
            "secret/hk/.hidden",
            "other/a/b",
            "hook/credentials-exchange/a.sh",
        ] {
            assert!(p.path_of(bad).is_err(), "{bad}");
        }
    }

    fn paths() -> Paths {
        Paths {
            config: "/x/hookgate.toml".into(),
            base: "/x".into(),
            hooks: "/x/hooks".into(),
            secrets: "/x/secrets".into(),
        }
    }

    fn entries_change(text: &str) -> Change {
        vec![(ENTRIES.to_string(), Some(text.as_bytes().to_vec()))]
    }

    #[test]
    fn shared_entries_may_name_only_the_secret_files_the_management_api_stores() {
        let p = paths();
        let ok = "[[hooks.hook]]\nid = \"hk-1\"\nfile = \"credentials-exchange/a.js\"\n\
                  enabled = false\norder = 2\ntimeout_ms = 100\non_error = \"allow\"\n\
                  secrets = { K = { file = \"secrets/hk-1/K\" } }\n";
        assert!(
            p.problems(&entries_change(ok)).is_empty(),
            "{:?}",
            p.problems(&entries_change(ok))
        );
        for bad in [
            "secrets = { K = { env = \"HOOKGATE_ADMIN_TOKEN\" } }",
            "secrets = { K = { file = \"/etc/hookgate/keys/x.pem\" } }",
            "secrets = { K = { file = \"token-all\" } }",
            "secrets = { K = { file = \"secrets/../keys/x.pem\" } }",
            "secrets = { K = { file = \"secrets/hk-1/sub/K\" } }",
            "unknown = 1",
        ] {
            let text = format!("[[hooks.hook]]\nfile = \"credentials-exchange/a.js\"\n{bad}\n");
            let problems = p.problems(&entries_change(&text));
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            // The refused entry is replaced by one that disables its hook; others are kept.
            let both = format!("{text}[[hooks.hook]]\nfile = \"credentials-exchange/b.js\"\n");
            let (kept, why) = p.sanitized(&entries_change(&both));
            assert_eq!(why.len(), 1, "{bad}");
            let kept = String::from_utf8(kept[0].1.clone().unwrap()).unwrap();
            assert!(
                !kept.contains("secrets") && !kept.contains("unknown"),
                "{kept}"
            );
            assert!(
                kept.contains("enabled = false") && kept.contains("b.js"),
                "{kept}"
            );
        }
        for bad_file in [
            "../x.js",
            "/etc/x.js",
            "credentials-exchange/a+b.js",
            "nope/a.js",
        ] {
            let text = format!("[[hooks.hook]]\nfile = \"{bad_file}\"\n");
            assert_eq!(p.problems(&entries_change(&text)).len(), 1, "{bad_file}");
        }
        assert_eq!(p.problems(&entries_change("not = [toml")).len(), 1);
        assert_eq!(p.problems(&entries_change("[server]\nx = 1\n")).len(), 1);
    }

    #[test]
    fn a_change_with_one_refused_key_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hookgate.toml");
        std::fs::write(&config, "[hooks]\ndir = \"hooks\"\n").unwrap();
        let p = Paths {
            config: config.clone(),
            base: dir.path().into(),
            hooks: dir.path().join("hooks"),
            secrets: dir.path().join("secrets"),
        };
        let change: Change = vec![
            (
                "hook/credentials-exchange/ok.js".into(),
                Some(b"x".to_vec()),
            ),
            (
                "hook/credentials-exchange/a+b.js".into(),
                Some(b"x".to_vec()),
            ),
        ];
        assert!(p.apply(&change).is_err());
        assert!(!dir.path().join("hooks/credentials-exchange/ok.js").exists());
        let (kept, problems) = p.sanitized(&change);
        assert_eq!((kept.len(), problems.len()), (1, 1));
        p.apply(&kept).unwrap();
        assert!(dir.path().join("hooks/credentials-exchange/ok.js").exists());
    }

    #[test]
    fn applying_entries_keeps_the_configuration_files_mode() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("hookgate.toml");
        std::fs::write(&config, "[hooks]\ndir = \"hooks\"\n").unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
        let p = Paths {
            config: config.clone(),
            base: dir.path().into(),
            hooks: dir.path().join("hooks"),
            secrets: dir.path().join("secrets"),
        };
        p.apply(&entries_change(
            "[[hooks.hook]]\nfile = \"credentials-exchange/a.js\"\nenabled = false\n",
        ))
        .unwrap();
        assert!(std::fs::read_to_string(&config)
            .unwrap()
            .contains("enabled = false"));
        let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
