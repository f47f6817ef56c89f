//! require(): node_modules resolution the Node way, versions ignored, built-ins, and load-time
//! rejection of anything that cannot be satisfied.

mod engine_support;

use engine_support::*;
use hookgate::engine::{Engine, HookError};
use hookgate::hooks::Generation;
use serde_json::json;
use std::sync::Arc;

fn fake_node_modules() -> Vec<(&'static str, &'static str)> {
    vec![
        // package.json main pointing into a subfolder, with a relative require and a JSON file
        ("node_modules/slack-notify/package.json", r#"{ "name": "slack-notify", "version": "1.0.0", "main": "lib/index" }"#),
        ("node_modules/slack-notify/lib/index.js", "var fmt = require('./format'); var meta = require('../meta.json'); module.exports = function (url) { return { url: url, send: function (m) { return fmt(m) + '@' + meta.channel; } }; };"),
        ("node_modules/slack-notify/lib/format.js", "module.exports = function (m) { return '[' + m + ']'; };"),
        ("node_modules/slack-notify/meta.json", r##"{ "channel": "#general" }"##),
        // directory index.js, no package.json
        ("node_modules/request/index.js", "exports.get = function () { return 'request.get'; }; exports.dep = require('axios').name;"),
        // nested dependency found from the package's folder upward
        ("node_modules/axios/package.json", r#"{ "name": "axios", "main": "./dist/axios.js" }"#),
        ("node_modules/axios/dist/axios.js", "module.exports = { name: 'axios', self: __filename.split('/').slice(-3).join('/') };"),
        // scoped package
        ("node_modules/@acme/util/package.json", r#"{ "name": "@acme/util" }"#),
        ("node_modules/@acme/util/index.js", "module.exports.twice = function (x) { return x * 2; };"),
        // a package with an optional dependency that is not installed: a warning, not an error
        ("node_modules/optional-user/index.js", "var opt; try { opt = require('not-installed'); } catch (e) { opt = null; } module.exports = opt === null ? 'no optional' : 'optional';"),
    ]
}

#[test]
fn packages_resolve_like_node_with_versions_ignored() {
    let mut files = fake_node_modules();
    files.push((
        "credentials-exchange/uses-packages.js",
        r#"
        var slack = require('slack-notify@0.1.7')('https://hooks.slack.example/x');
        var request = require('request');
        var axios = require('axios@0.19.2');
        var util = require('@acme/util@2.0.0');
        var opt = require('optional-user');
        var assert = require('assert');
        var helper = require('./helpers/local');
        module.exports = function (cb) {
          assert.strictEqual(util.twice(2), 4);
          cb(null, [slack.send('hi'), request.get(), request.dep, axios.self, util.twice(21), opt, helper.name, require('axios') === axios]);
        };
        "#,
    ));
    files.push((
        "credentials-exchange/helpers/local.js",
        "exports.name = 'local helper';",
    ));
    let dir = hooks_dir(&files);
    let cfg = config("workers = 1");
    let generation = load(dir.path(), &cfg);
    assert!(
        generation
            .warnings
            .iter()
            .any(|w| w.contains("not-installed")),
        "{:?}",
        generation.warnings
    );
    let engine = Engine::start(&cfg).unwrap();
    let h = hook(&generation, "credentials-exchange/uses-packages");
    assert_eq!(
        engine.call_blocking(&h, vec![], "r"),
        Ok(json!([
            "[hi]@#general",
            "request.get",
            "axios",
            "axios/dist/axios.js",
            42,
            "no optional",
            "local helper",
            true
        ]))
    );
}

#[test]
fn an_unresolvable_require_is_rejected_at_load_naming_the_module() {
    let dir = hooks_dir(&[
        ("credentials-exchange/missing.js", "// require('only-in-a-comment')\nvar x = require('graphql-request@1.8.2');\nmodule.exports = function (cb) { cb(); };"),
        ("credentials-exchange/also-missing.js", "var y = require('./nope');\nmodule.exports = function (cb) { cb(); };"),
    ]);
    let err = Generation::load(&config(""), dir.path()).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems.len(), 2, "{text}");
    assert!(
        text.contains("missing.js:2: require('graphql-request@1.8.2') cannot be satisfied"),
        "{text}"
    );
    assert!(
        text.contains("require('./nope') cannot be satisfied"),
        "{text}"
    );
    assert!(!text.contains("only-in-a-comment"), "{text}");
}

#[test]
fn a_syntax_error_is_rejected_at_load_with_file_line_and_column() {
    let dir = hooks_dir(&[
        (
            "credentials-exchange/good.js",
            "module.exports = function (cb) { cb(); };",
        ),
        (
            "pre-user-registration/broken.js",
            "module.exports = function (user, context, cb) {\n  var x = ;\n};\n",
        ),
        (
            "post-change-password/broken-too.js",
            "module.exports = function (user, context, cb) { cb( };\n",
        ),
    ]);
    let err = Generation::load(&config(""), dir.path()).unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems.len(), 2, "{text}");
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("pre-user-registration/broken.js:2:") && p.contains("SyntaxError")),
        "{text}"
    );
    assert!(
        err.problems
            .iter()
            .any(|p| p.contains("post-change-password/broken-too.js:1:")
                && p.contains("SyntaxError")),
        "{text}"
    );
}

#[test]
fn a_dynamic_require_fails_at_run_time_with_a_clear_message() {
    let (_dir, h, engine) = single(
        "module.exports = function (cb) { var n = 'a' + 'xios'; require(n); };",
        "",
        1,
    );
    let r = engine.call_blocking(&h, vec![], "r");
    assert!(
        matches!(&r, Err(HookError::Failed(f)) if f.message.contains("Cannot find module 'axios'")),
        "{r:?}"
    );
}

#[test]
fn builtin_modules_are_found_with_and_without_the_node_prefix() {
    let (_dir, h, engine) = single(
        "var a = require('assert'); var b = require('node:assert'); module.exports = function (cb) { try { a.equal(1, 2, 'one is not two'); } catch (e) { cb(null, [a === b, e.name, e.message]); } };",
        "",
        1,
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "r"),
        Ok(json!([true, "AssertionError", "one is not two"]))
    );
}

/// An Actions Module `vault` with a secret, a file of its own (`lib/config.js`) and an npm
/// dependency; `hook` is the hook that uses it.
fn module_program(
    hook_source: &str,
    env: &str,
) -> (tempfile::TempDir, Arc<hookgate::hooks::Hook>, Engine) {
    std::env::set_var(env, "s3cr3t");
    let dir = hooks_dir(&[
        (
            "modules/vault/index.js",
            "#!/usr/bin/env node\n'use strict';\nconst config = require('./lib/config');\nconst dep = require('dep');\nexports.fromIndex = () => actions.secrets.TOKEN;\nexports.fromLib = () => config.token();\nexports.dep = () => dep();\nexports.frozen = Object.isFrozen(actions) && Object.isFrozen(actions.secrets);\n",
        ),
        (
            "modules/vault/lib/config.js",
            "exports.token = () => actions.secrets.TOKEN;\n",
        ),
        (
            "modules/vault/node_modules/dep/index.js",
            "module.exports = () => typeof actions;\n",
        ),
        // Its own `const actions` at the top level is a new binding, not a SyntaxError.
        (
            "modules/shadow.js",
            "const actions = { secrets: { TOKEN: 'mine' } };\nexports.token = actions.secrets.TOKEN;\n",
        ),
        ("credentials-exchange/uses.js", hook_source),
    ]);
    let cfg = config(&format!(
        "workers = 1\n[[module]]\nname = \"vault\"\nsecrets = {{ TOKEN = {{ env = \"{env}\" }} }}\n"
    ));
    let generation = load(dir.path(), &cfg);
    let engine = Engine::start(&cfg).unwrap();
    let h = hook(&generation, "credentials-exchange/uses");
    (dir, h, engine)
}

#[test]
fn every_file_of_an_actions_module_sees_its_secrets_but_its_npm_dependencies_do_not() {
    let (_dir, h, engine) = module_program(
        "const v = require('actions:vault');\nconst s = require('actions:shadow');\nmodule.exports = function (cb) { cb(null, [v.fromIndex(), v.fromLib(), v.dep(), v.frozen, s.token, typeof actions]); };\n",
        "HG_TEST_MODULE_FILES",
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "r"),
        Ok(json!([
            "s3cr3t",
            "s3cr3t",
            "undefined",
            true,
            "mine",
            "undefined"
        ]))
    );
}

#[test]
fn a_hook_replacing_call_apply_or_freeze_never_receives_a_modules_secrets() {
    let (_dir, h, engine) = module_program(
        r#"
const seen = [];
const keep = { call: Function.prototype.call, apply: Function.prototype.apply, bind: Function.prototype.bind, freeze: Object.freeze, rapply: Reflect.apply };
function spy(name, real) {
  return function (...args) { seen.push(args); return keep.rapply(real, this, args); };
}
Function.prototype.call = spy('call', keep.call);
Function.prototype.apply = spy('apply', keep.apply);
Object.freeze = function (o) { seen.push([o]); return o; };
Reflect.apply = function (f, t, a) { seen.push([t, a]); return keep.rapply(f, t, a); };
const v = require('actions:vault');
Function.prototype.call = keep.call;
Function.prototype.apply = keep.apply;
Object.freeze = keep.freeze;
Reflect.apply = keep.rapply;
function leaks(x, depth) {
  if (depth > 3 || x === null || typeof x !== 'object') return x === 's3cr3t';
  try { return Object.keys(x).some((k) => leaks(x[k], depth + 1)); } catch (e) { return false; }
}
module.exports = function (cb) { cb(null, [seen.some((args) => leaks(args, 0)), v.fromIndex()]); };
"#,
        "HG_TEST_MODULE_CAPTURE",
    );
    assert_eq!(
        engine.call_blocking(&h, vec![], "r"),
        Ok(json!([false, "s3cr3t"]))
    );
}
