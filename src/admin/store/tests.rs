use super::*;

const CONFIG: &str = "# hookgate for the store's tests\n\
[upstream]\n\
address = \"127.0.0.1:3000\" # the IdP\n\
\n\
[hooks]\n\
dir = \"hooks\"\n\
\n\
# Adds the tier claim; reviewed by the security team.\n\
[[hooks.hook]]\n\
file = \"credentials-exchange/existing.js\"\n\
order = 5 # after the audit hook\n\
secrets = { TOKEN = { env = \"HOOKGATE_STORE_TEST_TOKEN\" } }\n";

const SCRIPT: &str = "module.exports = function (client, scope, audience, context, cb) {\n  cb(null, context);\n};\n";

fn setup() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hookgate.toml"), CONFIG).unwrap();
    let hooks = dir.path().join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("existing.js"), SCRIPT).unwrap();
    std::fs::write(hooks.join("plain.js"), SCRIPT).unwrap();
    let store = Store::open(&dir.path().join("hookgate.toml")).unwrap();
    (dir, store)
}

fn new_hook(name: &str) -> NewHook {
    NewHook {
        name: name.into(),
        script: SCRIPT.into(),
        trigger: Trigger::CredentialsExchange,
        enabled: false,
        dependencies: BTreeMap::new(),
    }
}

fn config_text(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("hookgate.toml")).unwrap()
}

#[test]
fn lists_files_with_and_without_entries_in_run_order_with_stable_ids() {
    let (_dir, store) = setup();
    let hooks = store.list().unwrap();
    let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["plain", "existing"], "order 0 before order 5");
    assert_eq!(
        hooks[0].id,
        derived_id(Trigger::CredentialsExchange, "plain")
    );
    assert!(hooks[0].id.starts_with("hk-") && hooks[0].id.len() == 23);
    assert!(hooks[0].enabled, "a file without an entry runs");
    assert_eq!(hooks[1].secrets, ["TOKEN"]);
    assert_eq!(
        store.list().unwrap()[0].id,
        hooks[0].id,
        "same id every time"
    );
}

#[test]
fn create_writes_a_disabled_entry_and_the_file_keeping_comments() {
    let (dir, store) = setup();
    let h = store.create(new_hook("add claims")).unwrap();
    assert!(!h.enabled);
    assert_eq!(h.file, Path::new("credentials-exchange/add claims.js"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hooks/credentials-exchange/add claims.js"))
            .unwrap(),
        SCRIPT
    );
    let text = config_text(&dir);
    assert!(
        text.starts_with("# hookgate for the store's tests\n"),
        "{text}"
    );
    assert!(
        text.contains("# Adds the tier claim; reviewed by the security team."),
        "{text}"
    );
    assert!(text.contains("order = 5 # after the audit hook"), "{text}");
    assert!(
        text.contains("address = \"127.0.0.1:3000\" # the IdP"),
        "{text}"
    );
    // The new entry comes after the existing one.
    let new_at = text.find("add claims.js").unwrap();
    assert!(new_at > text.find("existing.js").unwrap(), "{text}");
    Config::parse(Path::new("t.toml"), &text, &|_| None).unwrap();
    assert_eq!(store.get(&h.id).unwrap(), h);
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let (dir, store) = setup();
    let before = config_text(&dir);
    for bad in ["-x", "x-", "a_b", "", "a/b", "../x"] {
        assert!(
            matches!(store.create(new_hook(bad)), Err(StoreError::Invalid(_))),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.create(new_hook("existing")),
        Err(StoreError::Conflict(_))
    ));
    let mut big = new_hook("big");
    big.script = format!("{SCRIPT}//{}", "x".repeat(MAX_SCRIPT_BYTES));
    assert!(matches!(store.create(big), Err(StoreError::Invalid(_))));
    let mut broken = new_hook("broken");
    broken.script = "module.exports = function (a, b, c, d, cb) {\n  cb(null, {)\n};\n".into();
    let e = store.create(broken).unwrap_err().to_string();
    assert!(e.contains("broken.js:2"), "{e}");
    let mut throws = new_hook("throws");
    throws.script = "\n\nthrow new Error('no config');\n".into();
    let e = store.create(throws).unwrap_err().to_string();
    assert!(e.contains("throws.js:3"), "{e}");
    assert_eq!(config_text(&dir), before);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("hooks/credentials-exchange"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn rename_keeps_the_id_and_moves_the_file() {
    let (dir, store) = setup();
    let plain = store.list().unwrap()[0].clone();
    let renamed = store
        .update(
            &plain.id,
            HookPatch {
                name: Some("renamed".into()),
                enabled: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(renamed.id, plain.id);
    assert_eq!(renamed.name, "renamed");
    assert!(!renamed.enabled);
    assert!(!dir
        .path()
        .join("hooks/credentials-exchange/plain.js")
        .exists());
    assert!(dir
        .path()
        .join("hooks/credentials-exchange/renamed.js")
        .exists());
    // Found again from the files alone (a restart).
    let again = Store::open(&dir.path().join("hookgate.toml")).unwrap();
    assert_eq!(again.get(&plain.id).unwrap().name, "renamed");
    // A new hook with the old name gets another id.
    let reborn = store.create(new_hook("plain")).unwrap();
    assert_ne!(reborn.id, plain.id);
}

#[test]
fn settings_and_order_are_written_to_the_entry() {
    let (dir, store) = setup();
    let hooks = store.list().unwrap();
    let (plain, existing) = (&hooks[0], &hooks[1]);
    store
        .update(
            &plain.id,
            HookPatch {
                clients: Some(Some(vec!["abc".into()])),
                timeout_ms: Some(Some(500)),
                on_error: Some(OnError::Allow),
                dependencies: Some(BTreeMap::from([("lodash".into(), "4.17.21".into())])),
                ..Default::default()
            },
        )
        .unwrap();
    let h = store.get(&plain.id).unwrap();
    assert_eq!(h.clients, Some(vec!["abc".to_string()]));
    assert_eq!(h.timeout_ms, Some(500));
    assert_eq!(h.on_error, OnError::Allow);
    assert_eq!(h.dependencies["lodash"], "4.17.21");
    assert!(
        h.dependency_problems[0].contains("not installed"),
        "{:?}",
        h.dependency_problems
    );
    let order = store
        .set_order(
            Trigger::CredentialsExchange,
            std::slice::from_ref(&existing.id),
        )
        .unwrap();
    let ids: Vec<&str> = order.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, [existing.id.as_str(), plain.id.as_str()]);
    assert!(store
        .set_order(
            Trigger::PreUserRegistration,
            std::slice::from_ref(&existing.id)
        )
        .is_err());
    let text = config_text(&dir);
    Config::parse(Path::new("t.toml"), &text, &|_| None).unwrap();
    assert!(text.contains("# Adds the tier claim"), "{text}");
}

#[test]
fn secrets_are_private_files_named_by_the_entry_and_never_in_it() {
    let (dir, store) = setup();
    let existing = store.list().unwrap()[1].clone();
    let secrets = BTreeMap::from([("API_KEY".to_string(), "s3cret value".to_string())]);
    store.add_secrets(&existing.id, &secrets).unwrap();
    assert!(matches!(
        store.add_secrets(&existing.id, &secrets),
        Err(StoreError::Conflict(_))
    ));
    let path = dir
        .path()
        .join("secrets")
        .join(&existing.id)
        .join("API_KEY");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "s3cret value\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let text = config_text(&dir);
    assert!(!text.contains("s3cret"), "{text}");
    let cfg = Config::parse(&dir.path().join("hookgate.toml"), &text, &|_| None).unwrap();
    let read = crate::config::secrets::read_secret(
        &cfg.hooks.hook[0].secrets["API_KEY"],
        dir.path(),
        &|_| None,
    )
    .unwrap();
    assert_eq!(read, "s3cret value");
    // An env secret changed through the API becomes a stored one.
    store
        .update_secrets(
            &existing.id,
            &BTreeMap::from([("TOKEN".to_string(), "t".to_string())]),
        )
        .unwrap();
    assert!(!config_text(&dir).contains("HOOKGATE_STORE_TEST_TOKEN"));
    assert!(matches!(
        store.update_secrets(
            &existing.id,
            &BTreeMap::from([("NOPE".to_string(), "t".to_string())])
        ),
        Err(StoreError::SecretNotFound(_))
    ));
    let mut names = store.secret_names(&existing.id).unwrap();
    names.sort();
    assert_eq!(names, ["API_KEY", "TOKEN"]);
    store
        .delete_secrets(&existing.id, &["API_KEY".to_string(), "OTHER".to_string()])
        .unwrap();
    assert!(!path.exists());
    assert_eq!(store.secret_names(&existing.id).unwrap(), ["TOKEN"]);
    store.delete(&existing.id).unwrap();
    assert!(!dir.path().join("secrets").join(&existing.id).exists());
    assert!(matches!(store.get(&existing.id), Err(StoreError::NotFound)));
    assert!(!config_text(&dir).contains("existing.js"));
}

#[test]
fn concurrent_updates_leave_one_whole_file() {
    let (dir, store) = setup();
    let id = store.list().unwrap()[0].id.clone();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let id = id.clone();
            std::thread::spawn(move || {
                store
                    .update(
                        &id,
                        HookPatch {
                            order: Some(i),
                            timeout_ms: Some(Some(100 + i as u64)),
                            ..Default::default()
                        },
                    )
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = config_text(&dir);
    let cfg = Config::parse(Path::new("t.toml"), &text, &|_| None).unwrap();
    let h = store.get(&id).unwrap();
    assert_eq!(h.timeout_ms, Some(100 + h.order as u64), "one write, whole");
    assert_eq!(cfg.hooks.hook.len(), 2, "{text}");
}

/// A read-only configuration folder, as a ConfigMap is: a read-only tmpfs where mounting is
/// allowed (root, as in CI), else a folder without write permission (which stops non-root users).
struct ReadOnly {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl ReadOnly {
    fn new() -> ReadOnly {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        ReadOnly { dir, mounted }
    }

    fn seal(&self) {
        if self.mounted {
            let ok = std::process::Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(self.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "remount read-only");
        } else {
            std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o555))
                .unwrap();
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        } else {
            let _ =
                std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755));
        }
    }
}

#[test]
fn a_read_only_configuration_is_an_error_naming_the_file() {
    let ro = ReadOnly::new();
    let dir = ro.dir.path();
    std::fs::write(dir.join("hookgate.toml"), CONFIG).unwrap();
    let hooks = dir.join("hooks/credentials-exchange");
    std::fs::create_dir_all(&hooks).unwrap();
    std::fs::write(hooks.join("plain.js"), SCRIPT).unwrap();
    std::fs::write(hooks.join("existing.js"), SCRIPT).unwrap();
    let store = Store::open(&dir.join("hookgate.toml")).unwrap();
    let id = store.list().unwrap()[0].id.clone();
    ro.seal();
    let unwritable = std::fs::write(dir.join("probe"), "x").is_err();
    let r = store.update(
        &id,
        HookPatch {
            enabled: Some(false),
            ..Default::default()
        },
    );
    if !unwritable {
        eprintln!("skipped: cannot make a read-only folder here (root without mount)");
        return;
    }
    let e = r.unwrap_err();
    assert!(matches!(e, StoreError::ReadOnly { .. }), "{e:?}");
    assert!(e.to_string().contains("hookgate.toml"), "{e}");
    assert_eq!(store.list().unwrap()[0].id, id, "still readable");
}

#[test]
fn dependency_names_are_package_names_never_paths() {
    for ok in ["axios", "@slack/web-api", "lodash.get", "uuid"] {
        assert!(valid_package_name(ok), "{ok}");
        let deps = BTreeMap::from([(ok.to_string(), "1.0.0".to_string())]);
        assert!(check_dependencies(&deps).is_ok(), "{ok}");
    }
    for bad in [
        "../../../../etc/x",
        "..",
        ".hidden",
        "a/b",
        "@scope",
        "@scope/..",
        "@/x",
        "@s/a/b",
    ] {
        let deps = BTreeMap::from([(bad.to_string(), "1.0.0".to_string())]);
        assert!(
            matches!(check_dependencies(&deps), Err(StoreError::Invalid(_))),
            "{bad}"
        );
    }
}
