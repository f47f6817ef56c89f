//! One number for "everything a generation is built from": the configuration file's bytes, every
//! file under the hooks folder (symlinks followed, so a ConfigMap's `..data` swap changes it), and
//! the secret and key files the configuration names. Equal numbers: nothing to rebuild.
//!
//! Contents are hashed, not modification times: a ConfigMap swap, `rsync` and `git checkout`
//! all set times that say nothing, and an editor may save the same bytes again. The hash only
//! detects change (it is not a security boundary), so std's SipHash is enough.
//!
//! Except inside `node_modules` folders: there a file counts by its metadata (size, inode, and
//! modification and change times to the nanosecond). Installed packages weigh tens to hundreds
//! of megabytes (the Node-compatibility suite's: 162 MB), and reading them all, twice per
//! reload, made a one-line edit of a hook take most of a second. `npm ci`/`npm install` write
//! new files, which changes all of these; only a same-size rewrite within one tick of the
//! file system's clock would go unseen, until the next change.
//!
//! Owns: the fingerprint. Must not: load or validate anything (it only hashes what is named).

use std::hash::{DefaultHasher, Hasher};
use std::io;
use std::path::Path;

use crate::config::Config;
use crate::config::SecretSource;

/// Deeper than any real hooks folder; stops a symlink loop.
const MAX_DEPTH: usize = 16;

/// Fingerprint of the files. `boot` fixes the hooks folder (changing it needs a restart);
/// `parsed` (when the configuration parses) names the secret and key files.
pub fn of(config_path: &Path, boot: &Config, parsed: Option<&Config>) -> io::Result<u64> {
    let mut h = DefaultHasher::new();
    let text = std::fs::read(config_path)?;
    h.write(&text);
    h.write_u8(0xff);
    let hooks_dir = boot.base_dir().join(&boot.hooks.dir);
    if hooks_dir.is_dir() {
        tree(&mut h, &hooks_dir, Path::new(""), 0, false);
    } else {
        h.write(b"\0no hooks folder\0");
    }
    if let Some(cfg) = parsed {
        let base = cfg.base_dir();
        let secret_files = cfg
            .hooks
            .hook
            .iter()
            .flat_map(|s| s.secrets.values())
            .chain(cfg.hooks.module.iter().flat_map(|m| m.secrets.values()))
            .filter_map(|s| match s {
                SecretSource::File(p) => Some(p),
                SecretSource::Env(_) => None,
            });
        let key_files = cfg.token.signing_key.iter().chain(&cfg.token.previous_keys);
        for p in secret_files.chain(key_files) {
            file(&mut h, &base.join(p), p);
        }
    }
    Ok(h.finish())
}

/// `packages`: inside a `node_modules` folder (files count by their metadata).
fn tree(h: &mut DefaultHasher, dir: &Path, rel: &Path, depth: usize, packages: bool) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        h.write(b"\0unreadable folder\0");
        return;
    };
    let mut names: Vec<_> = entries
        .flatten()
        .map(|e| e.file_name())
        // Dot entries are editors' temporary files and a ConfigMap's `..data`/`..2026_...`
        // folders, which are reached (once) through the symlinks that point into them.
        .filter(|n| !n.as_encoded_bytes().starts_with(b"."))
        .collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        // `metadata` follows symlinks: a symlinked trigger folder is hashed by what it points at.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                h.write(rel.as_os_str().as_encoded_bytes());
                h.write(b"/\0");
                let packages = packages || name == "node_modules";
                tree(h, &path, &rel, depth + 1, packages);
            }
            Ok(m) if packages => package_file(h, &m, &rel),
            Ok(m) if m.is_file() => file(h, &path, &rel),
            // A named pipe, socket or device: never read (a pipe would block the reload
            // thread, and every reload after it, for ever); no hook can require one.
            Ok(_) => {
                h.write(rel.as_os_str().as_encoded_bytes());
                h.write(b"\0special\0");
            }
            // A dangling symlink or a file deleted since the listing: the event that follows
            // makes another check.
            Err(_) => {
                h.write(rel.as_os_str().as_encoded_bytes());
                h.write(b"\0gone\0");
            }
        }
    }
}

fn file(h: &mut DefaultHasher, path: &Path, name: &Path) {
    h.write(name.as_os_str().as_encoded_bytes());
    h.write_u8(0);
    match std::fs::read(path) {
        Ok(bytes) => {
            h.write_u64(bytes.len() as u64);
            h.write(&bytes);
        }
        Err(_) => h.write(b"\0unreadable\0"),
    }
}

/// A file of an installed package, by its metadata (see the module's documentation).
fn package_file(h: &mut DefaultHasher, m: &std::fs::Metadata, name: &Path) {
    use std::os::unix::fs::MetadataExt;
    h.write(name.as_os_str().as_encoded_bytes());
    h.write(b"\0meta\0");
    for n in [
        m.len(),
        m.dev(),
        m.ino(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ctime() as u64,
        m.ctime_nsec() as u64,
    ] {
        h.write_u64(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let path = dir.join("hookgate.toml");
        std::fs::write(&path, "[upstream]\naddress = \"127.0.0.1:1\"\n").unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn changes_with_contents_not_with_rewrites_of_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let hooks = dir.path().join("hooks/credentials-exchange");
        std::fs::create_dir_all(&hooks).unwrap();
        std::fs::write(hooks.join("a.js"), "1").unwrap();
        let first = of(&cfg.path, &cfg, Some(&cfg)).unwrap();
        std::fs::write(hooks.join("a.js"), "1").unwrap();
        assert_eq!(of(&cfg.path, &cfg, Some(&cfg)).unwrap(), first);
        std::fs::write(hooks.join(".a.js.swp"), "editor junk").unwrap();
        assert_eq!(of(&cfg.path, &cfg, Some(&cfg)).unwrap(), first);
        std::fs::write(hooks.join("a.js"), "2").unwrap();
        assert_ne!(of(&cfg.path, &cfg, Some(&cfg)).unwrap(), first);
    }

    #[test]
    fn an_installed_package_counts_by_its_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let pkg = dir.path().join("hooks/node_modules/left-pad");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("index.js"), "module.exports = 1;").unwrap();
        let first = of(&cfg.path, &cfg, None).unwrap();
        assert_eq!(of(&cfg.path, &cfg, None).unwrap(), first);
        // npm writes a new file (new inode, times) for a new version...
        std::fs::write(pkg.join("index.js.new"), "module.exports = 22;").unwrap();
        std::fs::rename(pkg.join("index.js.new"), pkg.join("index.js")).unwrap();
        let second = of(&cfg.path, &cfg, None).unwrap();
        assert_ne!(second, first);
        // Nothing under node_modules is read: a named pipe there would block a read forever.
        let fifo = pkg.join("pipe");
        mkfifo(&fifo);
        let with_pipe = unblocked(&cfg)
            .expect("the fingerprint read a file under node_modules (it blocked on a pipe)");
        assert_ne!(with_pipe, second);
        std::fs::remove_file(&fifo).unwrap();
        // A package added or removed is a change too.
        std::fs::create_dir_all(dir.path().join("hooks/node_modules/other")).unwrap();
        std::fs::write(dir.path().join("hooks/node_modules/other/index.js"), "").unwrap();
        assert_ne!(of(&cfg.path, &cfg, None).unwrap(), second);
    }

    #[test]
    fn a_named_pipe_in_the_hooks_folder_is_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let hooks = dir.path().join("hooks/credentials-exchange");
        std::fs::create_dir_all(&hooks).unwrap();
        mkfifo(&hooks.join("a.js"));
        assert!(
            unblocked(&cfg).is_some(),
            "the fingerprint blocked reading a named pipe: the reload thread would hang"
        );
    }

    fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(made, "mkfifo {}", path.display());
    }

    /// The fingerprint, taken on a thread of its own; `None` if it had not come back after 30 s
    /// (it is blocked reading something it should not read).
    fn unblocked(cfg: &Config) -> Option<u64> {
        let (tx, rx) = std::sync::mpsc::channel();
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let _ = tx.send(of(&cfg.path, &cfg, None).unwrap());
        });
        rx.recv_timeout(std::time::Duration::from_secs(30)).ok()
    }

    #[test]
    fn follows_a_configmap_symlink_swap() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let hooks = dir.path().join("hooks");
        for (stamp, body) in [("..v1", "one"), ("..v2", "two")] {
            std::fs::create_dir_all(hooks.join(stamp).join("credentials-exchange")).unwrap();
            std::fs::write(hooks.join(stamp).join("credentials-exchange/a.js"), body).unwrap();
        }
        std::os::unix::fs::symlink("..v1", hooks.join("..data")).unwrap();
        std::os::unix::fs::symlink(
            "..data/credentials-exchange",
            hooks.join("credentials-exchange"),
        )
        .unwrap();
        let first = of(&cfg.path, &cfg, None).unwrap();
        std::os::unix::fs::symlink("..v2", hooks.join("..data_tmp")).unwrap();
        std::fs::rename(hooks.join("..data_tmp"), hooks.join("..data")).unwrap();
        assert_ne!(of(&cfg.path, &cfg, None).unwrap(), first);
    }
}
