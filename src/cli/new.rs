//! `hookgate new`: write Auth0's starter code (a Hook's, or with `--actions` an Action's) for a
//! trigger where hookgate will find it.
//!
//! Owns: writing a trigger's starter (`crate::hooks::contract::starter`) where hookgate finds it. Must not: overwrite a file, or
//! write anywhere but `<hooks>/<trigger-id>/<name>.js`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};

use super::{parse_trigger, Failure};
use crate::config::Trigger;
use crate::hooks::contract::starter;

/// `hookgate new <trigger> <name> [--dir hooks] [--actions]`, as the command line gives it.
pub fn run(trigger: &str, name: &str, dir: &Path, actions: bool) -> Result<(), Failure> {
    let trigger = parse_trigger(trigger)?;
    let code = if actions {
        crate::hooks::actions::starter(trigger)
    } else {
        starter(trigger)
    };
    let path =
        write_code(dir, trigger, name, code).map_err(|e| Failure::failed(format!("{e:#}")))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `hookgate new`: write the starter code to `<hooks_dir>/<trigger-id>/<name>.js`. Refuses to
/// overwrite an existing file. Returns the path written.
pub fn write_starter(hooks_dir: &Path, trigger: Trigger, name: &str) -> anyhow::Result<PathBuf> {
    write_code(hooks_dir, trigger, name, starter(trigger))
}

/// Write `code` to `<hooks_dir>/<trigger-id>/<name>.js`, never over an existing file.
fn write_code(
    hooks_dir: &Path,
    trigger: Trigger,
    name: &str,
    code: &str,
) -> anyhow::Result<PathBuf> {
    let stem = name.strip_suffix(".js").unwrap_or(name);
    if stem.is_empty() || stem.starts_with('.') || stem.contains(['/', '\\']) {
        bail!("`{name}` is not a usable hook name: use a plain file name such as `add-claims`");
    }
    let dir = hooks_dir.join(trigger.id());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{stem}.js"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow!(
                    "{} already exists; choose another name or delete it first",
                    path.display()
                )
            } else {
                anyhow!("cannot create {}: {e}", path.display())
            }
        })?;
    file.write_all(code.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
