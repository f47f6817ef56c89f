//! A hook's program: its own file and every module it can `require`, compiled and resolved at load.
//!
//! Owns: Node-style resolution (`name`, `name@version`, `@scope/name`, relative paths,
//! `package.json` `main`, directory `index.js`, `.json` files) inside the hooks folder, Auth0's
//! Actions Modules (`require("actions:<name>")`: `<hooks dir>/modules/<name>`; each of its own
//! files is compiled with the module wrapper and keyed `actions:<name>:<path>`, and the loader,
//! require.js, hands it the module's frozen `actions.secrets`), the static
//! scan for `require('...')` literals, and the module graph handed to the workers.
//! Must not touch: any JS runtime but the compiler's. Workers never read files: a module that was
//! not resolved here does not exist for the hook.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use super::builtins;
use super::compile::{compile_actions_module, compile_commonjs, SyntaxError};

/// What a module key stands for.
#[derive(Debug)]
pub enum ModuleCode {
    /// CommonJS bytecode; evaluates to the module wrapper function. Shared by the generations
    /// built from the same text (a built-in, a file that did not change).
    Script(Arc<[u8]>),
    /// The text of a `.json` module, parsed in the hook's context when required.
    Json(String),
}

/// One module of the graph, with the answer to every `require` literal found in it.
#[derive(Debug)]
pub struct Module {
    /// The key other modules use for it: an absolute path, or `builtin:<name>`.
    pub key: String,
    /// `__filename` as the hook sees it: `/hooks/<path inside the hooks folder>` (see
    /// [`VIRTUAL_ROOT`]); for a builtin, its name. Never the real path on disk.
    pub filename: String,
    pub code: ModuleCode,
    /// `require` specifier (as written) -> module key.
    pub requires: HashMap<String, String>,
}

/// Everything a hook can run, keyed by module key. Built once per generation, shared by workers.
#[derive(Debug, Clone)]
pub struct Program {
    pub main: String,
    pub modules: HashMap<String, Arc<Module>>,
}

impl Program {
    /// This program with a new main module compiled from `source` (CommonJS), whose
    /// `require(alias)` is the old main module. How an Auth0 Action runs behind the Hook calling
    /// convention (`hooks::actions`).
    pub fn with_entry(
        &self,
        key: &str,
        filename: &str,
        source: &str,
        alias: &str,
    ) -> Result<Program, ProgramError> {
        let code = compile_commonjs(filename, source).map_err(ProgramError::Syntax)?;
        let mut modules = self.modules.clone();
        modules.insert(
            key.to_owned(),
            Arc::new(Module {
                key: key.to_owned(),
                filename: filename.to_owned(),
                code: ModuleCode::Script(code.into()),
                requires: HashMap::from([(alias.to_owned(), self.main.clone())]),
            }),
        );
        Ok(Program {
            main: key.to_owned(),
            modules,
        })
    }
}

/// A problem found while building programs. `Display` is the line shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramError {
    Syntax(SyntaxError),
    Unresolved {
        file: String,
        module: String,
        line: u32,
    },
    Unreadable {
        file: String,
        error: String,
    },
    /// `require("actions:<name>")` names no Actions Module (or no usable name).
    NoActionsModule {
        file: String,
        module: String,
        line: u32,
        why: String,
    },
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgramError::Syntax(e) => e.fmt(f),
            ProgramError::Unresolved { file, module, line } => write!(
                f,
                "{file}:{line}: require('{module}') cannot be satisfied: no built-in module and no package under node_modules has that name (install it with `npm install` in the hooks folder)"
            ),
            ProgramError::Unreadable { file, error } => write!(f, "{file}: cannot read: {error}"),
            ProgramError::NoActionsModule {
                file,
                module,
                line,
                why,
            } => write!(f, "{file}:{line}: require('{module}'): {why}"),
        }
    }
}

/// Where the hooks folder appears to hooks (`__filename`, `__dirname`, stack traces), like a
/// container path: the real folder on disk is the operator's business, not the hook's (a hook
/// could report it anywhere). `credentials-exchange/add-claims.js` is
/// `/hooks/credentials-exchange/add-claims.js`.
pub const VIRTUAL_ROOT: &str = "/hooks";

/// Builds programs for one generation; modules shared by several hooks are compiled once.
pub struct ProgramBuilder {
    root: PathBuf,
    cache: HashMap<String, Arc<Module>>,
    /// Each Actions Module's secrets (`[[hooks.module]]`), by module name.
    module_secrets: BTreeMap<String, BTreeMap<String, String>>,
    /// Modules whose transitive requires failed; reported as warnings, once.
    pub warnings: Vec<String>,
}

impl ProgramBuilder {
    /// `root` is the hooks folder: `node_modules` lookups never climb above it.
    pub fn new(root: &Path) -> ProgramBuilder {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        ProgramBuilder {
            root,
            cache: HashMap::new(),
            module_secrets: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The secrets of the Actions Modules (by name): inside module `<name>`, the global
    /// `actions.secrets`. A module without an entry has none.
    pub fn with_module_secrets(
        mut self,
        secrets: BTreeMap<String, BTreeMap<String, String>>,
    ) -> ProgramBuilder {
        self.module_secrets = secrets;
        self
    }

    /// Compile `file` and everything it requires. Problems in the hook file itself (syntax,
    /// unresolvable `require`) are errors; a package's own unresolvable requires are warnings,
    /// because packages often `require` optional dependencies inside `try`.
    pub fn build(&mut self, file: &Path) -> Result<Program, Vec<ProgramError>> {
        let file = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        self.build_main(&file, None)
    }

    /// [`ProgramBuilder::build`] for a hook whose source is given, not read: it stands at
    /// `relative` inside the hooks folder (what its `__filename` and relative `require`s see;
    /// nothing is written there, and a file of that name, if any, is not read). The Runner
    /// compiles scripts that were never saved this way. Errors name `relative`.
    pub fn build_source(
        &mut self,
        relative: &Path,
        source: &str,
    ) -> Result<Program, Vec<ProgramError>> {
        let file = self.root.join(relative);
        self.build_main(&file, Some(source)).map_err(|errors| {
            let real = file.to_string_lossy().into_owned();
            let shown = relative.to_string_lossy().into_owned();
            errors
                .into_iter()
                .map(|e| match e {
                    ProgramError::Syntax(mut s) if s.file == real => {
                        s.file = shown.clone();
                        ProgramError::Syntax(s)
                    }
                    ProgramError::Unresolved { file, module, line } if file == real => {
                        ProgramError::Unresolved {
                            file: shown.clone(),
                            module,
                            line,
                        }
                    }
                    ProgramError::NoActionsModule {
                        file,
                        module,
                        line,
                        why,
                    } if file == real => ProgramError::NoActionsModule {
                        file: shown.clone(),
                        module,
                        line,
                        why,
                    },
                    other => other,
                })
                .collect()
        })
    }

    fn build_main(
        &mut self,
        file: &Path,
        source: Option<&str>,
    ) -> Result<Program, Vec<ProgramError>> {
        let mut errors = Vec::new();
        let mut modules = HashMap::new();
        let main = match self.module_for_file(file, true, source, None, &mut errors) {
            Some(m) => m,
            None => return Err(errors),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        self.collect(&main, &mut modules);
        // The globals `Buffer` and `process` are these built-ins' exports, loaded on first use.
        for name in builtins::GLOBALS_NEED {
            let b = builtins::find(name).expect("GLOBALS_NEED names built-ins");
            match self.builtin_module(b, &mut errors) {
                Some(m) => self.collect(&m, &mut modules),
                None => return Err(errors),
            }
        }
        Ok(Program {
            main: main.key.clone(),
            modules,
        })
    }

    /// `file` as hooks see it: under [`VIRTUAL_ROOT`], its path inside the hooks folder.
    fn virtual_name(&self, file: &Path) -> String {
        let inside = match file.strip_prefix(&self.root) {
            Ok(rel) => rel.to_path_buf(),
            // Never happens (resolution stays inside the folder); show no more than the name.
            Err(_) => file.file_name().map(PathBuf::from).unwrap_or_default(),
        };
        let mut out = String::from(VIRTUAL_ROOT);
        for part in inside.components() {
            out.push('/');
            out.push_str(&part.as_os_str().to_string_lossy());
        }
        out
    }

    fn collect(&self, module: &Arc<Module>, out: &mut HashMap<String, Arc<Module>>) {
        if out.insert(module.key.clone(), module.clone()).is_some() {
            return;
        }
        for key in module.requires.values() {
            if let Some(m) = self.cache.get(key) {
                self.collect(m, out);
            }
        }
    }

    /// The Actions Module a file belongs to: `owner` when the requiring side knows it (the
    /// module's entry, a relative require from one of its files), else by place —
    /// `modules/<name>/...` or `modules/<name>.js`. Never a file under a `node_modules`: a
    /// module's npm dependencies are ordinary packages and do not see `actions`.
    fn module_owner(&self, file: &Path, owner: Option<&str>) -> Option<String> {
        let modules = self.root.join(MODULES_DIR);
        let rel = file.strip_prefix(&self.root).unwrap_or(file);
        if rel.components().any(|c| c.as_os_str() == "node_modules") {
            return None;
        }
        if let Some(o) = owner {
            return Some(o.to_owned());
        }
        let inside = file.strip_prefix(&modules).ok()?;
        let mut parts = inside.components();
        let first = parts.next()?.as_os_str().to_string_lossy().into_owned();
        let name = if parts.next().is_some() {
            first
        } else {
            Path::new(&first)
                .file_stem()?
                .to_string_lossy()
                .into_owned()
        };
        crate::config::is_module_name(&name).then_some(name)
    }

    /// The module key of Actions Module `name`'s secrets, made on first use: a JSON module that
    /// only the module's own files require (their loader reads it to build `actions`).
    fn module_secrets_key(&mut self, name: &str) -> String {
        let key = format!("{ACTIONS_SECRETS_PREFIX}{name}");
        if !self.cache.contains_key(&key) {
            let secrets = self.module_secrets.get(name).cloned().unwrap_or_default();
            self.cache.insert(
                key.clone(),
                Arc::new(Module {
                    key: key.clone(),
                    filename: format!("actions-module-secrets:{name}"),
                    code: ModuleCode::Json(
                        serde_json::to_string(&secrets).expect("strings serialise"),
                    ),
                    requires: HashMap::new(),
                }),
            );
        }
        key
    }

    fn module_for_file(
        &mut self,
        file: &Path,
        is_hook: bool,
        given: Option<&str>,
        owner: Option<&str>,
        errors: &mut Vec<ProgramError>,
    ) -> Option<Arc<Module>> {
        let real = file.to_string_lossy().into_owned();
        let owner = self.module_owner(file, owner);
        // A file of an Actions Module is its own module (other wrapper, the module's secrets),
        // so it has its own key: `actions:<name>:<path>`. The loader (require.js) knows it by
        // that prefix.
        let key = match &owner {
            Some(name) => format!("{ACTIONS_PREFIX}{name}:{real}"),
            None => real.clone(),
        };
        if let Some(m) = self.cache.get(&key).filter(|_| given.is_none()) {
            return Some(m.clone());
        }
        let filename = self.virtual_name(file);
        let read = match given {
            Some(text) => Ok(text.to_owned()),
            None => std::fs::read_to_string(file),
        };
        let source = match read {
            Ok(s) => s,
            Err(e) => {
                errors.push(ProgramError::Unreadable {
                    file: real,
                    error: e.to_string(),
                });
                return None;
            }
        };
        if file.extension().is_some_and(|e| e == "json") {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(&source) {
                errors.push(ProgramError::Unreadable {
                    file: real,
                    error: format!("invalid JSON: {e}"),
                });
                return None;
            }
            let m = Arc::new(Module {
                key: key.clone(),
                filename,
                code: ModuleCode::Json(source),
                requires: HashMap::new(),
            });
            self.cache.insert(key, m.clone());
            return Some(m);
        }
        // Compiled under the virtual name (stack traces show it); errors name the real file.
        let compiled = match compiled_file(&filename, &source, owner.is_some()) {
            Ok(c) => c,
            Err(mut e) => {
                e.file = real.clone();
                errors.push(ProgramError::Syntax(e));
                return None;
            }
        };
        let mut module = Module {
            key: key.clone(),
            filename: filename.clone(),
            code: ModuleCode::Script(compiled.bytecode.clone()),
            requires: HashMap::new(),
        };
        if let Some(name) = &owner {
            let secrets = self.module_secrets_key(name);
            module.requires.insert(SECRETS_SPEC.to_owned(), secrets);
        }
        // Insert a placeholder first so require cycles terminate.
        self.cache.insert(
            key.clone(),
            Arc::new(Module {
                key: key.clone(),
                filename,
                code: ModuleCode::Json("null".into()),
                requires: HashMap::new(),
            }),
        );
        let dir = file.parent().unwrap_or(&self.root).to_path_buf();
        for (spec, line) in compiled.requires.iter().cloned() {
            if module.requires.contains_key(&spec) {
                continue;
            }
            let mut sub_errors = Vec::new();
            if let Some(name) = spec.strip_prefix(ACTIONS_PREFIX) {
                // A module is the Action's own code: its problems are the requiring file's.
                match self.actions_module(name, &mut sub_errors) {
                    Ok(target) => {
                        module.requires.insert(spec, target);
                    }
                    Err(why) => errors.push(ProgramError::NoActionsModule {
                        file: real.clone(),
                        module: spec,
                        line,
                        why,
                    }),
                }
                errors.extend(sub_errors);
                continue;
            }
            // A module's own files (relative requires) share its `actions`; a module's own
            // requires are errors, as a hook's: a module that cannot load keeps the
            // generation from loading.
            let strict = is_hook || owner.is_some();
            match self.resolve(&dir, &spec, owner.as_deref(), &mut sub_errors) {
                Some(target) => {
                    module.requires.insert(spec, target);
                }
                None => {
                    let e = ProgramError::Unresolved {
                        file: real.clone(),
                        module: spec,
                        line,
                    };
                    if strict {
                        errors.push(e);
                    } else {
                        self.warnings.push(e.to_string());
                    }
                }
            }
            // Errors inside a required package (syntax, unreadable) block the hook only when the
            // hook requires it directly; deeper ones were already recorded as warnings.
            if strict {
                errors.extend(sub_errors);
            } else {
                self.warnings
                    .extend(sub_errors.iter().map(|e| e.to_string()));
            }
        }
        let module = Arc::new(module);
        self.cache.insert(key, module.clone());
        Some(module)
    }

    /// The Actions Module `name` (`require("actions:<name>")`): `<root>/modules/<name>.js` or
    /// the package folder `<root>/modules/<name>/` (its `package.json` `main`, else
    /// `index.js`). Each of its files (not its `node_modules`) is compiled inside a function
    /// that gives it the variable `actions` (`actions.secrets`: the module's own secrets,
    /// frozen), see [`ProgramBuilder::module_for_file`]. Its requires resolve from its own
    /// folder (its `node_modules`, then the hooks folder's), never above the hooks folder.
    /// Returns the module key, or why there is no such module (problems inside the module go
    /// to `errors`).
    fn actions_module(
        &mut self,
        name: &str,
        errors: &mut Vec<ProgramError>,
    ) -> Result<String, String> {
        if !crate::config::is_module_name(name) {
            return Err(format!(
                "`{name}` is not an Actions Module name (letters, digits, `-`, `_` and `.`, not starting with `.`)"
            ));
        }
        let folder = self.root.join(MODULES_DIR);
        let target = folder.join(name);
        let file = match self.resolve_path(&target) {
            // The name is one plain segment; a symlink the operator made is theirs to follow.
            Some(f) if self.inside_root(&target) => f,
            _ => {
                return Err(format!(
                    "no Actions Module named `{name}`: a module is the folder {MODULES_DIR}/{name}/ (with index.js or a package.json `main`) or the file {MODULES_DIR}/{name}.js in the hooks folder"
                ))
            }
        };
        let key = format!("{ACTIONS_PREFIX}{name}:{}", file.to_string_lossy());
        // Its problems are in `errors`, which fail the build.
        let _ = self.module_for_file(&file, true, None, Some(name), errors);
        Ok(key)
    }

    /// Whether `path`, with its `.` and `..` resolved as written (lexically: a symlink the
    /// operator put in the folder is theirs to follow), stays inside the hooks folder.
    fn inside_root(&self, path: &Path) -> bool {
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                Component::ParentDir => {
                    if !out.pop() {
                        return false;
                    }
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        out.starts_with(&self.root)
    }

    /// Resolve `spec` as written in a file of `dir`; returns the module key.
    fn resolve(
        &mut self,
        dir: &Path,
        spec: &str,
        owner: Option<&str>,
        errors: &mut Vec<ProgramError>,
    ) -> Option<String> {
        if spec.starts_with("./") || spec.starts_with("../") || spec == "." || spec == ".." {
            // Never above the hooks folder: a script sent to the management API (the Runner, a
            // create) must not read `../../keys/...` into an error message or its result.
            let target = dir.join(spec);
            if !self.inside_root(&target) {
                return None;
            }
            let file = self.resolve_path(&target)?;
            // A file of an Actions Module requiring its own files: they are the module's too.
            return self
                .module_for_file(&file, false, None, owner, errors)
                .map(|m| m.key.clone());
        }
        if spec.starts_with('/') {
            return None; // absolute paths would reach outside the hooks folder
        }
        if let Some(builtin) = builtin_for(spec) {
            return Some(self.builtin_module(builtin, errors)?.key.clone());
        }
        let (name, version, subpath) = split_package_spec(spec);
        if let Some(v) = version {
            tracing::info!(module = %spec, package = %name, version = %v, "require: the version suffix is ignored; the installed package is used");
        }
        // node_modules lookup from `dir` up to the hooks root, like Node, never above it.
        let mut cur = Some(dir.to_path_buf());
        while let Some(d) = cur {
            let candidate = d.join("node_modules").join(name);
            let target = match subpath {
                Some(sub) => candidate.join(sub),
                None => candidate,
            };
            if !self.inside_root(&target) {
                return None; // `pkg/../../..` or a name with `..`
            }
            if let Some(file) = self.resolve_path(&target) {
                return self
                    .module_for_file(&file, false, None, None, errors)
                    .map(|m| m.key.clone());
            }
            if d == self.root || !d.starts_with(&self.root) {
                break;
            }
            cur = d.parent().map(Path::to_path_buf);
        }
        None
    }

    fn builtin_module(
        &mut self,
        b: &'static builtins::Builtin,
        errors: &mut Vec<ProgramError>,
    ) -> Option<Arc<Module>> {
        let key = format!("builtin:{}", b.name);
        if let Some(m) = self.cache.get(&key) {
            return Some(m.clone());
        }
        let compiled = match compiled_builtin(&key, b) {
            Ok(c) => c,
            Err(e) => {
                errors.push(ProgramError::Syntax(e));
                return None;
            }
        };
        // Built-ins require each other (stream needs events and buffer, ...): resolve those
        // against built-ins only, so a hook's node_modules can never stand in for one. A
        // placeholder first, because built-ins require each other in cycles.
        self.cache.insert(
            key.clone(),
            Arc::new(Module {
                key: key.clone(),
                filename: b.name.to_owned(),
                code: ModuleCode::Json("null".into()),
                requires: HashMap::new(),
            }),
        );
        let mut requires = HashMap::new();
        for (spec, line) in compiled.requires.iter() {
            match builtin_for(spec) {
                Some(dep) => {
                    if let Some(m) = self.builtin_module(dep, errors) {
                        requires.insert(spec.clone(), m.key.clone());
                    }
                }
                // `builtins_require_only_builtins` keeps this from happening in a release.
                None => self.warnings.push(
                    ProgramError::Unresolved {
                        file: key.clone(),
                        module: spec.clone(),
                        line: *line,
                    }
                    .to_string(),
                ),
            }
        }
        let m = Arc::new(Module {
            key: key.clone(),
            filename: b.name.to_owned(),
            code: ModuleCode::Script(compiled.bytecode.clone()),
            requires,
        });
        self.cache.insert(key, m.clone());
        Some(m)
    }

    /// LOAD_AS_FILE then LOAD_AS_DIRECTORY, as Node does.
    fn resolve_path(&self, p: &Path) -> Option<PathBuf> {
        let p = normalize(p);
        if p.is_file() {
            return Some(canon(&p));
        }
        for ext in ["js", "json", "cjs"] {
            let mut with = p.clone().into_os_string();
            with.push(".");
            with.push(ext);
            let with = PathBuf::from(with);
            if with.is_file() {
                return Some(canon(&with));
            }
        }
        if p.is_dir() {
            // Regular files only: a named pipe would block the reload thread for ever.
            let manifest = p.join("package.json");
            let text = manifest
                .is_file()
                .then(|| std::fs::read_to_string(&manifest).ok())
                .flatten();
            if let Some(text) = text {
                if let Ok(pkg) = serde_json::from_str::<serde_json::Value>(&text) {
                    if let Some(main) = pkg.get("main").and_then(|m| m.as_str()) {
                        // A `main` that leaves its package (`/etc/x`, `../../keys/k`) would
                        // read any file into the hook: such a package does not resolve. A
                        // sub-folder's package.json may point back into its package
                        // (`cross-fetch/polyfill` → `../dist/node-polyfill.js`).
                        let inside = normalize(&p.join(main));
                        if Path::new(main).is_absolute()
                            || !inside.starts_with(self.package_root(&p))
                        {
                            return None;
                        }
                        if let Some(f) = self.resolve_file_or_index(&inside) {
                            return Some(f);
                        }
                    }
                }
            }
            for index in ["index.js", "index.json"] {
                if p.join(index).is_file() {
                    return Some(canon(&p.join(index)));
                }
            }
        }
        None
    }

    /// The package a folder belongs to: the nearest `node_modules/<name>` (or
    /// `node_modules/@scope/<name>`) or Actions Module folder (`<hooks>/modules/<name>`) holding
    /// it, else the folder itself.
    fn package_root(&self, dir: &Path) -> PathBuf {
        let parts: Vec<_> = dir.components().collect();
        for i in (0..parts.len()).rev() {
            let here: PathBuf = parts[..i].iter().collect();
            let name = parts[i].as_os_str().to_string_lossy();
            let parent = i
                .checked_sub(1)
                .map(|j| parts[j].as_os_str().to_string_lossy());
            let grandparent = i
                .checked_sub(2)
                .map(|j| parts[j].as_os_str().to_string_lossy());
            let in_node_modules = parent.as_deref() == Some("node_modules")
                || (parent.as_deref().is_some_and(|p| p.starts_with('@'))
                    && grandparent.as_deref() == Some("node_modules"));
            let a_module = here == self.root.join(MODULES_DIR);
            if (in_node_modules && !name.starts_with('@')) || a_module {
                return parts[..=i].iter().collect();
            }
        }
        dir.to_path_buf()
    }

    fn resolve_file_or_index(&self, p: &Path) -> Option<PathBuf> {
        let p = normalize(p);
        if p.is_file() {
            return Some(canon(&p));
        }
        for ext in ["js", "json"] {
            let mut with = p.clone().into_os_string();
            with.push(".");
            with.push(ext);
            if Path::new(&with).is_file() {
                return Some(canon(Path::new(&with)));
            }
        }
        for index in ["index.js", "index.json"] {
            if p.join(index).is_file() {
                return Some(canon(&p.join(index)));
            }
        }
        None
    }
}

/// How an Action names an Actions Module: `require("actions:<name>")`.
const ACTIONS_PREFIX: &str = "actions:";

/// The folder of Actions Modules inside the hooks folder. Not a trigger's folder, so nothing in
/// it is ever loaded as a hook.
pub const MODULES_DIR: &str = "modules";

/// The module key of an Actions Module's secrets (a JSON module only that module reaches).
const ACTIONS_SECRETS_PREFIX: &str = "actions-secrets:";

/// What a module's wrapper requires its secrets by.
const SECRETS_SPEC: &str = "hookgate:actions-module-secrets";

/// Built-ins that stand for npm packages rather than Node modules: Auth0 hooks name them with a
/// version (`require('aws-sdk@2.814.0')`), and the built-in answers whatever the version.
const PACKAGE_BUILTINS: &[&str] = &["aws-sdk"];

/// The built-in `spec` names, as Node decides: the exact name (`util`, `stream/promises`), with or
/// without `node:`. `punycode/` (trailing slash) is how packages ask for the npm package instead,
/// so it is not a built-in, and neither is a Node module name with a version suffix.
fn builtin_for(spec: &str) -> Option<&'static builtins::Builtin> {
    if let (name, Some(_), None) = split_package_spec(spec) {
        return PACKAGE_BUILTINS
            .contains(&name)
            .then(|| builtins::find(name))
            .flatten();
    }
    builtins::find(spec.strip_prefix("node:").unwrap_or(spec))
}

fn canon(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `axios@0.19.2` -> (`axios`, Some(`0.19.2`), None); `@scope/pkg@1/lib/x` -> (`@scope/pkg`, Some(`1`), Some(`lib/x`)).
pub fn split_package_spec(spec: &str) -> (&str, Option<&str>, Option<&str>) {
    let name_end = if spec.starts_with('@') {
        match spec.find('/') {
            Some(slash) => spec[slash + 1..]
                .find('/')
                .map(|i| slash + 1 + i)
                .unwrap_or(spec.len()),
            None => spec.len(),
        }
    } else {
        spec.find('/').unwrap_or(spec.len())
    };
    let (full, rest) = spec.split_at(name_end);
    let subpath = rest.strip_prefix('/').filter(|s| !s.is_empty());
    let search_from = usize::from(full.starts_with('@'));
    match full[search_from..].find('@') {
        Some(at) => {
            let at = at + search_from;
            (&full[..at], Some(&full[at + 1..]), subpath)
        }
        None => (full, None, subpath),
    }
}

/// Files compiled by earlier builds, by the name they were compiled under and their wrapper
/// (CommonJS or an Actions Module's): a generation built again after one hook changed compiles
/// that file alone, not the hundreds of files its neighbours' packages hold (request + axios:
/// 230). An entry counts only for the very same text; the oldest go once the sources and
/// bytecode held pass [`COMPILED_FILES_BYTES`].
static COMPILED_FILES: LazyLock<Mutex<CompiledFiles>> =
    LazyLock::new(|| Mutex::new(CompiledFiles::default()));

/// What [`COMPILED_FILES`] may hold, sources and bytecode together.
const COMPILED_FILES_BYTES: usize = 64 << 20;

#[derive(Default)]
struct CompiledFiles {
    entries: HashMap<(String, bool), CompiledFile>,
    bytes: usize,
    clock: u64,
}

struct CompiledFile {
    source: Arc<str>,
    compiled: Arc<Compiled>,
    used: u64,
}

/// `source` compiled as `filename` (an Actions Module's file when `actions`), with its
/// `require`s: from [`COMPILED_FILES`] when the same name held the same text before.
fn compiled_file(
    filename: &str,
    source: &str,
    actions: bool,
) -> Result<Arc<Compiled>, SyntaxError> {
    let key = (filename.to_owned(), actions);
    let lock = || COMPILED_FILES.lock().unwrap_or_else(|e| e.into_inner());
    {
        let mut cache = lock();
        cache.clock += 1;
        let now = cache.clock;
        if let Some(entry) = cache.entries.get_mut(&key) {
            if *entry.source == *source {
                entry.used = now;
                return Ok(entry.compiled.clone());
            }
        }
    }
    let bytecode = if actions {
        compile_actions_module(filename, source)?
    } else {
        compile_commonjs(filename, source)?
    };
    let compiled = Arc::new(Compiled {
        bytecode: bytecode.into(),
        requires: scan_requires(source),
    });
    let size = source.len() + compiled.bytecode.len();
    let mut cache = lock();
    cache.clock += 1;
    let used = cache.clock;
    if let Some(old) = cache.entries.insert(
        key,
        CompiledFile {
            source: source.into(),
            compiled: compiled.clone(),
            used,
        },
    ) {
        cache.bytes -= old.source.len() + old.compiled.bytecode.len();
    }
    cache.bytes += size;
    if cache.bytes > COMPILED_FILES_BYTES {
        // Down to half, the least recently used first.
        let mut by_age: Vec<_> = cache
            .entries
            .iter()
            .map(|(k, e)| (e.used, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age {
            if cache.bytes <= COMPILED_FILES_BYTES / 2 {
                break;
            }
            if let Some(e) = cache.entries.remove(&k) {
                cache.bytes -= e.source.len() + e.compiled.bytecode.len();
            }
        }
    }
    Ok(compiled)
}

/// A file or built-in compiled, with the `require`s its source names.
struct Compiled {
    bytecode: Arc<[u8]>,
    requires: Vec<(String, u32)>,
}

/// The built-ins compiled once per process: their sources are part of the binary, so every
/// generation would compile and scan the same text again (`Buffer` and `process`, and what they
/// require, are in every program: two thirds of a one-hook reload's time before this).
static BUILTINS_COMPILED: LazyLock<Mutex<HashMap<&'static str, Arc<Compiled>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn compiled_builtin(
    key: &str,
    b: &'static builtins::Builtin,
) -> Result<Arc<Compiled>, SyntaxError> {
    let lock = || BUILTINS_COMPILED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = lock().get(b.name) {
        return Ok(c.clone());
    }
    // Compiled outside the lock: two generations built at once (`hookgate check` beside the
    // reload thread, tests) may both compile it; either result is the same.
    let compiled = Arc::new(Compiled {
        bytecode: compile_commonjs(key, b.source)?.into(),
        requires: scan_requires(b.source),
    });
    // The first copy stored wins, so every program shares one.
    Ok(lock().entry(b.name).or_insert(compiled).clone())
}

/// Find `require('literal')` calls, skipping comments, strings, template text and regex literals.
/// Returns each specifier with its 1-based line.
pub fn scan_requires(src: &str) -> Vec<(String, u32)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    // The last significant byte, to tell a regex literal from a division.
    let mut prev: u8 = b';';
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            b'\'' | b'"' | b'`' => {
                i = skip_string(b, i, &mut line);
                prev = b'"';
            }
            b'/' if b"(,=:[!&|?{};+-*%<>~^".contains(&prev) => {
                // regex literal
                i += 1;
                let mut in_class = false;
                while i < b.len() && b[i] != b'\n' {
                    match b[i] {
                        b'\\' => i += 1,
                        b'[' => in_class = true,
                        b']' => in_class = false,
                        b'/' if !in_class => break,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                prev = b'"';
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &src[start..i];
                let before = src[..start].trim_end().as_bytes().last().copied();
                if word == "require" && before != Some(b'.') {
                    if let Some(spec) = literal_call(b, i) {
                        out.push((spec, line));
                    }
                }
                prev = b'a';
            }
            _ => {
                prev = c;
                i += 1;
            }
        }
    }
    out
}

fn skip_string(b: &[u8], start: usize, line: &mut u32) -> usize {
    let q = b[start];
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\n' => *line += 1,
            c if c == q => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// After `require`: `( 'x' )` -> Some("x").
fn literal_call(b: &[u8], mut i: usize) -> Option<String> {
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    ws(&mut i);
    if b.get(i) != Some(&b'(') {
        return None;
    }
    i += 1;
    ws(&mut i);
    let q = *b.get(i)?;
    if q != b'\'' && q != b'"' {
        return None;
    }
    let start = i + 1;
    let end = start
        + b[start..]
            .iter()
            .position(|&c| c == q || c == b'\\' || c == b'\n')?;
    if b[end] != q {
        return None;
    }
    let mut j = end + 1;
    ws(&mut j);
    if b.get(j) != Some(&b')') {
        return None;
    }
    String::from_utf8(b[start..end].to_vec()).ok()
}

/// The module keys of a program, sorted; for diagnostics.
pub fn module_keys(p: &Program) -> BTreeMap<&str, &str> {
    p.modules
        .iter()
        .map(|(k, m)| (k.as_str(), m.filename.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_literal_requires_but_not_comments_or_strings() {
        let src = "var a = require('axios@0.19.2');\n// require('commented')\n/* require('block') */\nvar s = \"require('in-string')\";\nvar r = /require\\('x'\\)/;\nconst b = require(\"./lib\");\nobj.require('method');\nrequire(name);\n";
        let found: Vec<_> = scan_requires(src).into_iter().map(|(s, _)| s).collect();
        assert_eq!(found, vec!["axios@0.19.2", "./lib"]);
    }

    #[test]
    fn split_spec_handles_versions_and_scopes() {
        assert_eq!(
            split_package_spec("axios@0.19.2"),
            ("axios", Some("0.19.2"), None)
        );
        assert_eq!(split_package_spec("request"), ("request", None, None));
        assert_eq!(
            split_package_spec("@scope/pkg@1.0.0"),
            ("@scope/pkg", Some("1.0.0"), None)
        );
        assert_eq!(
            split_package_spec("@scope/pkg/lib/x"),
            ("@scope/pkg", None, Some("lib/x"))
        );
        assert_eq!(
            split_package_spec("lodash/fp"),
            ("lodash", None, Some("fp"))
        );
    }

    #[test]
    fn requires_never_reach_above_the_hooks_folder() {
        let base = tempfile::tempdir().unwrap();
        let hooks = base.path().join("hooks");
        std::fs::create_dir_all(hooks.join("credentials-exchange")).unwrap();
        std::fs::create_dir_all(hooks.join("lib")).unwrap();
        std::fs::create_dir_all(hooks.join("node_modules/pkg")).unwrap();
        std::fs::write(
            hooks.join("node_modules/pkg/index.js"),
            "module.exports = 1;",
        )
        .unwrap();
        std::fs::write(hooks.join("lib/util.js"), "module.exports = 2;").unwrap();
        std::fs::write(base.path().join("admin-token"), "tok3n").unwrap();
        std::fs::write(base.path().join("secret.json"), "{\"k\": 1}").unwrap();
        for (spec, ok) in [
            ("../lib/util", true),
            ("pkg", true),
            ("../../admin-token", false),
            ("../../secret.json", false),
            ("./../../secret", false),
            ("pkg/../../../secret.json", false),
            ("pkg/../../lib/util", true),
        ] {
            let source =
                format!("var x = require('{spec}');\nmodule.exports = function () {{}};\n");
            let built = ProgramBuilder::new(&hooks)
                .build_source(Path::new("credentials-exchange/h.js"), &source);
            assert_eq!(built.is_ok(), ok, "{spec}: {built:?}");
        }
    }

    #[test]
    fn the_compiled_files_kept_are_told_apart_by_name_wrapper_and_text() {
        let src = "module.exports = 1;";
        let get = |name: &str, src: &str, actions: bool| compiled_file(name, src, actions).unwrap();
        let a = get("/hooks/cache-test/a.js", src, false);
        assert!(Arc::ptr_eq(&a, &get("/hooks/cache-test/a.js", src, false)));
        // Another wrapper (an Actions Module's file), another name (stack traces show it),
        // another text: each its own bytecode.
        assert!(!Arc::ptr_eq(&a, &get("/hooks/cache-test/a.js", src, true)));
        assert!(!Arc::ptr_eq(&a, &get("/hooks/cache-test/b.js", src, false)));
        assert!(!Arc::ptr_eq(
            &a,
            &get("/hooks/cache-test/a.js", "module.exports = 2;", false)
        ));
        // A syntax error is never kept: the same broken text is reported again.
        for _ in 0..2 {
            assert!(compiled_file("/hooks/cache-test/bad.js", "var = ;", false).is_err());
        }
    }

    #[test]
    fn generations_share_what_did_not_change_compiled_once() {
        let dir = tempfile::tempdir().unwrap();
        let source = "var u = require('util');\nmodule.exports = function (a, b, c, d, cb) { cb(null, {}); };\n";
        let build = || {
            ProgramBuilder::new(dir.path())
                .build_source(Path::new("credentials-exchange/h.js"), source)
                .unwrap()
        };
        let (first, second) = (build(), build());
        let script = |p: &Program, key: &str| match &p.modules[key].code {
            ModuleCode::Script(code) => code.clone(),
            ModuleCode::Json(_) => panic!("{key} is not a script"),
        };
        // Every built-in the hook and the globals need, in both programs, with the same
        // requires, and the very same bytecode (compiled once per process, not per build).
        let builtins: Vec<_> = first
            .modules
            .keys()
            .filter(|k| k.starts_with("builtin:"))
            .cloned()
            .collect();
        assert!(builtins.iter().any(|k| k == "builtin:util"), "{builtins:?}");
        assert!(
            builtins.iter().any(|k| k == "builtin:buffer"),
            "{builtins:?}"
        );
        for key in &builtins {
            assert!(
                Arc::ptr_eq(&script(&first, key), &script(&second, key)),
                "{key} was compiled again"
            );
            assert_eq!(
                first.modules[key].requires, second.modules[key].requires,
                "{key}"
            );
        }
        assert_eq!(
            first
                .modules
                .keys()
                .collect::<std::collections::BTreeSet<_>>(),
            second.modules.keys().collect()
        );
        // A file is compiled again only when its text changed: the same text is shared, the
        // next version (one character more) is not.
        assert!(Arc::ptr_eq(
            &script(&first, &first.main),
            &script(&second, &second.main)
        ));
        let changed = ProgramBuilder::new(dir.path())
            .build_source(
                Path::new("credentials-exchange/h.js"),
                &source.replace("{}", "{ a: 1 }"),
            )
            .unwrap();
        assert_ne!(
            script(&first, &first.main),
            script(&changed, &changed.main),
            "the changed file ran as its old bytecode"
        );
    }

    #[test]
    fn an_actions_module_name_never_leaves_the_modules_folder() {
        let base = tempfile::tempdir().unwrap();
        let hooks = base.path().join("hooks");
        std::fs::create_dir_all(hooks.join("modules/ok")).unwrap();
        std::fs::write(
            hooks.join("modules/ok/index.js"),
            "exports.k = actions.secrets.K;",
        )
        .unwrap();
        std::fs::write(hooks.join("modules/single.js"), "module.exports = 1;").unwrap();
        std::fs::write(hooks.join("outside.js"), "module.exports = 1;").unwrap();
        std::fs::write(base.path().join("etc.js"), "module.exports = 1;").unwrap();
        for (spec, ok) in [
            ("actions:ok", true),
            ("actions:single", true),
            ("actions:../outside", false),
            ("actions:../../etc", false),
            ("actions:..", false),
            ("actions:/etc/passwd", false),
            ("actions:ok/../../outside", false),
            ("actions:missing", false),
            ("hookgate:actions-module-secrets", false),
        ] {
            let source = format!("var m = require('{spec}');\nexports.onExecuteCredentialsExchange = async () => {{}};\n");
            let mut b = ProgramBuilder::new(&hooks).with_module_secrets(BTreeMap::from([(
                "ok".to_owned(),
                BTreeMap::from([("K".to_owned(), "v".to_owned())]),
            )]));
            let built = b.build_source(Path::new("credentials-exchange/a.js"), &source);
            assert_eq!(built.is_ok(), ok, "{spec}: {built:?}");
            if let Err(e) = built {
                assert!(
                    e[0].to_string().starts_with("credentials-exchange/a.js:1:"),
                    "{e:?}"
                );
            }
        }
    }

    #[test]
    fn a_package_main_never_leaves_its_package_folder() {
        let base = tempfile::tempdir().unwrap();
        let hooks = base.path().join("hooks");
        std::fs::create_dir_all(hooks.join("credentials-exchange")).unwrap();
        std::fs::write(base.path().join("key.js"), "module.exports = 'k';").unwrap();
        std::fs::write(hooks.join("other.js"), "module.exports = 1;").unwrap();
        for (main, ok) in [
            ("lib/in.js", true),
            ("./lib/../lib/in", true),
            ("../../../key.js", false),
            ("../../other.js", false),
            ("/etc/hostname", false),
        ] {
            for folder in ["node_modules/pkg", "modules/pkg"] {
                let pkg = hooks.join(folder);
                std::fs::create_dir_all(pkg.join("lib")).unwrap();
                std::fs::write(pkg.join("lib/in.js"), "module.exports = 2;").unwrap();
                std::fs::write(
                    pkg.join("package.json"),
                    format!("{{\"main\": \"{main}\"}}"),
                )
                .unwrap();
            }
            for spec in ["pkg", "actions:pkg"] {
                let source =
                    format!("var x = require('{spec}');\nmodule.exports = function () {{}};\n");
                let built = ProgramBuilder::new(&hooks)
                    .build_source(Path::new("credentials-exchange/h.js"), &source);
                assert_eq!(built.is_ok(), ok, "{spec} with main {main}: {built:?}");
            }
        }
        // A sub-folder's package.json may point back into its own package, as
        // `cross-fetch/polyfill` does (`"main": "../dist/node-polyfill.js"`), not out of it.
        for (scope, main, ok) in [
            ("", "../lib/in.js", true),
            ("@s/", "../lib/in.js", true),
            ("", "../../other/lib/in.js", false),
        ] {
            let pkg = hooks.join(format!("node_modules/{scope}pkg"));
            std::fs::create_dir_all(pkg.join("polyfill")).unwrap();
            std::fs::create_dir_all(pkg.join("lib")).unwrap();
            std::fs::create_dir_all(hooks.join("node_modules/other/lib")).unwrap();
            std::fs::write(pkg.join("lib/in.js"), "module.exports = 2;").unwrap();
            std::fs::write(
                hooks.join("node_modules/other/lib/in.js"),
                "module.exports = 3;",
            )
            .unwrap();
            std::fs::write(
                pkg.join("polyfill/package.json"),
                format!("{{\"main\": \"{main}\"}}"),
            )
            .unwrap();
            let source = format!(
                "var x = require('{scope}pkg/polyfill');\nmodule.exports = function () {{}};\n"
            );
            let built = ProgramBuilder::new(&hooks)
                .build_source(Path::new("credentials-exchange/h.js"), &source);
            assert_eq!(
                built.is_ok(),
                ok,
                "{scope}pkg/polyfill with main {main}: {built:?}"
            );
        }
    }

    #[test]
    fn a_versioned_aws_sdk_is_the_built_in_but_a_versioned_node_module_is_not() {
        assert_eq!(
            builtin_for("aws-sdk@2.814.0").map(|b| b.name),
            Some("aws-sdk")
        );
        assert_eq!(builtin_for("aws-sdk").map(|b| b.name), Some("aws-sdk"));
        assert_eq!(builtin_for("node:util").map(|b| b.name), Some("util"));
        assert!(builtin_for("util@0.12.5").is_none());
        assert!(builtin_for("punycode/").is_none());
    }
}
