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

use crate::config::{Config, Trigger};

/// Key → content.
pub type Files = BTreeMap<String, Vec<u8>>;

/// One file's change: new content, or `None` for removed.
pub type Change = Vec<(String, Option<Vec<u8>>)>;

pub const ENTRIES: &str = "entries";

/// Where this replica keeps the managed files.
#[derive(Debug, Clone)]
pub struct Paths {
    config: PathBuf,
    hooks: PathBuf,
    secrets: PathBuf,
}

impl Paths {
    pub fn of(config: &Config) -> Paths {
        let base = config.base_dir();
        Paths {
            config: std::fs::canonicalize(&config.path).unwrap_or_else(|_| config.path.clone()),
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
                for file in std::fs::read_dir(id.path())?.flatten() {
                    let name = file.file_name().to_string_lossy().into_owned();
                    if name.starts_with('.') || !file.path().is_file() {
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

    /// Write a change: files first, the entries last (a reload only follows, but a store read in
    /// between then sees no entry naming a file that is not there yet).
    pub fn apply(&self, change: &Change) -> anyhow::Result<()> {
        let mut entries = None;
        for (key, content) in change {
            if key == ENTRIES {
                entries = Some(content.clone().unwrap_or_default());
                continue;
            }
            let (path, secret) = self.path_of(key)?;
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
        if let Some(entries) = entries {
            let text = std::fs::read_to_string(&self.config)?;
            let new = with_entries(&text, &String::from_utf8_lossy(&entries))?;
            if new != text {
                write_atomic(&self.config, new.as_bytes(), 0o644)?;
            }
        }
        Ok(())
    }

    /// The local path of a key; refuses anything that could leave the managed folders (keys come
    /// from Redis, which another party may write).
    fn path_of(&self, key: &str) -> anyhow::Result<(PathBuf, bool)> {
        let safe = |part: &str| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.len() <= 255
                && part
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b" _-.@".contains(&c))
        };
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
}
