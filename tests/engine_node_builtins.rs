//! Node's pure-JS core modules and the `Buffer`/`process` globals, used the way npm packages use
//! them. Each `tests/node_builtins/<name>.js` is a hook file; its expected value below is what
//! Node 20 gives for the same file (`sh tests/node_builtins/run-under-node.sh <name>.js`), pasted
//! as is. The hookgate-only behaviour (fresh `process.env`, the unsupported stand-ins, `os`) is
//! pinned after those.

mod engine_support;

use engine_support::*;
use serde_json::{json, Value};

/// One call of `source` as a hook on a fresh engine; cb's value.
fn run(source: &str) -> Value {
    let (_dir, h, engine) = single(source, "", 1);
    match engine.call_blocking(&h, vec![], "r") {
        Ok(v) => v,
        Err(e) => panic!("{e:?}"),
    }
}

fn node(expected: &str) -> Value {
    serde_json::from_str(expected).unwrap()
}

/// Compares key by key first, so a failure names the entry that differs.
fn assert_like_node(got: Value, expected: &str) {
    let want = node(expected);
    if let (Some(g), Some(w)) = (got.as_object(), want.as_object()) {
        for (k, wv) in w {
            assert_eq!(g.get(k), Some(wv), "key {k}");
        }
    }
    assert_eq!(got, want);
}

/// Buffer: encodings both ways, byteLength, concat, slices, binary reads and writes, inspect.
#[test]
fn buffer_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/buffer.js")),
        r##"{"global":true,"byteLength":[17,13,2],"hex":"68c3a96c6c6f2077c3b6726c6420e29c93","base64":"aMOpbGxvIHfDtnJsZCDinJM=","fromHex":"héllo","fromBase64":"héllo","base64Loose":"hi","latin1":["68e96c6c6f","éA"],"binary":"éA","ascii":"hi","ucs2":["6800e900","he"],"concat":"abcd","alloc":["010101",5],"isBuffer":[true,false,false],"slice":["c3a9","e29c93"],"json":"{\"type\":\"Buffer\",\"data\":[104,105]}","compare":[true,-1],"rw":["deadbeeffeff000000000000f83fff00",3735928559,-2,1.5,255,57005],"search":[7,true],"inspect":"<Buffer 61 62 63>","uint8":true,"lossy":["�A��","�����","😀"]}"##,
    );
}

/// EventEmitter: listener order, once, counts, 'error' without a listener throwing, events.once.
#[test]
fn events_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/events.js")),
        r##"{"log":["prepend:1","on:1","once:1","prepend:2","on:2","handled:caught"],"counts":[2,["x"],false],"thrown":["boom","Unhandled error. ('text')","ERR_UNHANDLED_ERROR"],"shared":true,"args":[42,"y"]}"##,
    );
}

/// A Readable piped through a Transform into a Writable; pipeline, finished, stream/promises, the legacy Stream shape.
#[test]
fn stream_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/stream.js")),
        r##"{"chunks":["HELLO ","WÖRLD","!"],"events":["end","finish","finished:ok"],"objects":["a","b","c"],"pipelineErr":"undefined","promiseErr":"source broke","shape":["function",true,true,true,true,true,"function"]}"##,
    );
}

/// util.format, util.inspect of nested and special values, promisify (+ custom), inherits, types, deprecate.
#[test]
fn util_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/util.js")),
        r##"{"inspected":["{ a: 1, b: 'two', c: [ 1, 2, 3 ], d: { e: { f: [Object] } } }","{ a: [Object] }","[\n   1,  2,  3,  4,  5,  6,  7,  8,\n   9, 10, 11, 12, 13, 14, 15, 16,\n  17, 18, 19, 20, 21, 22, 23, 24,\n  25, 26\n]","{\n  longlonglongkey1: 'a string value here',\n  longlonglongkey2: 'another string value',\n  k3: [ 1, 2 ]\n}","<ref *1> { name: 'c', self: [Circular *1] }","Map(1) { 'k' => { v: 1 } }","Set(2) { 1, 'two' }","Point { x: 1, y: 2 }","[Object: null prototype] {}","[\n  undefined,\n  null,\n  -0,\n  10n,\n  Symbol(s),\n  \"it's\",\n  [Function: named],\n  [Function (anonymous)],\n  [class K]\n]","1970-01-01T00:00:00.000Z","/x+/gi","CUSTOM!","{ 'a-b': 1, g: [Getter], [Symbol(k)]: 2 }","'str'","[ <3 empty items> ]","[ [ 1, [ 2, [Array] ] ] ]",14],"formatted":["a 42 {\"x\":[1]}","only:%s","12.5% of 7 extra { y: 1 }","[ 1, [length]: 1 ]","{ a: [Object] }","[ 1, 2 ]","null undefined 3n","1 two { three: 3 }","{ a: 1 }","1.5"],"sum":5,"failed":"nope","viaCustom":"custom","customSymbol":true,"inspectSymbol":true,"inherits":["hello from kid","own",true,true],"types":[true,true,true,true,true,true],"deprecated":"still works","deepEqual":[true,false]}"##,
    );
}

/// Legacy url.parse(..., true) fields, format, resolve, domainToASCII.
#[test]
fn url_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/url.js")),
        r##"{"fields":{"protocol":"http:","slashes":true,"auth":"user:pw","host":"host:8080","port":"8080","hostname":"host","hash":"#hash","search":"?query=string","query":{"query":"string"},"pathname":"/p/a/t/h","path":"/p/a/t/h?query=string","href":"http://user:pw@host:8080/p/a/t/h?query=string#hash"},"queryString":"a=1","plain":["example.com","/a%20b","?x=1&x=2&y","x=1&x=2&y","https://example.com/a%20b?x=1&x=2&y"],"relative":["/just/a/path","cdn.example","mailto:a@b.c"],"format":["https://example.com/some/path?page=1&format=json&tags=a&tags=b","http://user:pw@host:8080/p/a/t/h?query=string#hash","http://a.b:81?s=1#frag"],"resolve":["/one/two/four","http://example.com/one","http://example.com/two","http://a/b/g"],"domainToASCII":["xn--espaol-zwa.com",""],"shape":["function","function","function"]}"##,
    );
}

/// querystring.stringify/parse with arrays, escapes, separators, maxKeys, malformed escapes.
#[test]
fn querystring_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/querystring.js")),
        r##"{"stringify":["a=1&a=2&b=x%20y&c=%C3%BC%26%3D&d=&e=true&f=","w:a;x:b","it's=(*)!~"],"parse":[{"a":["1","2"],"b":"x y","c":"ü&=","d":"","e":"","plus":"a b"},{"w":"a","x":"b"},{"a":"1","b":"2"},{"bad":"�%A"}],"escape":["a%20b%26c%2F%C3%BC","a b&","%zz "]}"##,
    );
}

/// path.join/resolve/relative/normalize/parse (absolute inputs, so cwd does not matter).
#[test]
fn path_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/path.js")),
        r##"{"join":["/a/c/d.txt","a/b/","."],"resolve":["/foo/bar/baz","/tmp/file","/a/c"],"relative":["../../impl/bbb","","c/d"],"normalize":"/foo/bar/baz/asdf","parse":{"root":"/","dir":"/home/user/dir","base":"file.txt","ext":".txt","name":"file"},"pieces":["b","/a/b",".md",false],"format":"/home/user/file.txt","sep":["/",":",true,true]}"##,
    );
}

/// string_decoder, punycode, assert (deep equality, throws, rejects, strict), timers and timers/promises.
#[test]
fn misc_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/misc.js")),
        r##"{"decoded":["","","€uro",""],"base64":["","YWI="],"punycode":["maana-pta","mañana","xn--maana-pta.com","mañana.com"],"asserts":["no throw",["AssertionError","ERR_ASSERTION","Expected values to be strictly deep-equal:"],"no throw","no throw",["AssertionError","ERR_ASSERTION","Expected values to be strictly deep-equal:"],"no throw",["AssertionError","ERR_ASSERTION","Expected values to be strictly deep-equal:"],["AssertionError","ERR_ASSERTION","Expected values to be strictly equal:"],["AssertionError","ERR_ASSERTION","Expected \"actual\" to be strictly unequal to: 1"],"no throw",["AssertionError","ERR_ASSERTION","The expression evaluated to a falsy value:"],["AssertionError","ERR_ASSERTION","custom message"],"no throw","no throw","no throw",["AssertionError","ERR_ASSERTION","Missing expected exception."],"no throw","no throw",["AssertionError","ERR_ASSERTION","boom"],["AssertionError","ERR_ASSERTION","Expected values to be strictly equal:"],["AssertionError","ERR_ASSERTION","Expected values to be strictly deep-equal:"],["function","ERR_ASSERTION"]],"notRejected":"Missing expected rejection.","order":["timers.setTimeout","slept"],"timers":[true,true,"function"]}"##,
    );
}

/// process: nextTick order against promises, env coercion and delete, hrtime, events, fields.
#[test]
fn process_like_node() {
    assert_like_node(
        run(include_str!("node_builtins/process.js")),
        r##"{"order":["tick1:xy","tick2","tick3","promise"],"env":["5","undefined",false,["HOOKGATE_TEST_N","HOOKGATE_TEST_U"]],"hrtime":[true,2,0,"bigint"],"events":[["heard"],true],"shape":["string",true,true,"linux","number","string","number","number",false,"boolean",true,true,false,true,"[object process]"]}"##,
    );
}

/// `process.env` is a fresh, empty object on every call: the host's environment never shows, and
/// what one call writes (credentials, typically) is gone in the next, on the same worker and
/// context.
#[test]
fn process_env_is_fresh_and_empty_on_every_call() {
    let (_dir, h, engine) = single(
        r#"
        const atLoad = Object.keys(process.env);
        module.exports = function (cb) {
          const seen = process.env.SECRET === undefined ? null : process.env.SECRET;
          const keys = Object.keys(process.env);
          process.env.SECRET = 'x';
          process.env.N = 5;
          cb(null, [atLoad, seen, keys, process.env.N, typeof process.env.N]);
        };
        "#,
        "",
        1,
    );
    assert!(
        std::env::var_os("PATH").is_some(),
        "the host has an environment to leak"
    );
    let first = engine.call_blocking(&h, vec![], "r1").unwrap();
    assert_eq!(first, json!([[], null, [], "5", "string"]));
    let second = engine.call_blocking(&h, vec![], "r2").unwrap();
    assert_eq!(second, json!([[], null, [], "5", "string"]));
}

/// Every stand-in for a module that needs the machine can be required; its functions throw
/// ERR_HOOKGATE_UNSUPPORTED naming the function and why (fs.promises rejects), and the pure parts
/// work: net.isIP* give Node 20's answers, fs.existsSync says no. (`net`, `tls` and `dns` are
/// real: tests/node_sockets.rs.)
#[test]
fn unsupported_modules_load_and_throw_a_clear_error() {
    let got = run(r#"
        const fs = require('fs');
        const stubs = {
          fs: () => fs.readFileSync('/etc/passwd'),
          child_process: () => require('child_process').execSync('id'),
          http2: () => require('http2').connect('https://example.com'),
          cluster: () => require('cluster').fork(),
          dgram: () => require('dgram').createSocket('udp4'),
          worker_threads: () => new (require('worker_threads').Worker)('x.js'),
          vm: () => require('vm').runInNewContext('1'),
          tty: () => new (require('tty').WriteStream)(1),
          process_exit: () => process.exit(1),
        };
        const errors = {};
        for (const k of Object.keys(stubs)) {
          try { stubs[k](); errors[k] = 'no throw'; } catch (e) { errors[k] = [e.code, e.message]; }
        }
        const net = require('net');
        const ips = ['127.0.0.1','256.1.1.1','::1','fe80::1%eth0','2001:db8::ff00:42:8329','::ffff:192.168.1.1','1:2:3:4:5:6:7:8:9','example.com','', '01.2.3.4', '1.2.3', 'abcd::ef12::1'];
        module.exports = function (cb) {
          fs.promises.readFile('/etc/passwd').then(() => cb(null, 'resolved'), (e) => cb(null, {
            errors,
            promises: [e.code, e.message],
            existsSync: fs.existsSync('/etc/passwd'),
            constants: [fs.constants.R_OK, typeof fs.createReadStream],
            ips: ips.map((s) => [net.isIP(s), net.isIPv4(s), net.isIPv6(s)]),
            flags: [require('tty').isatty(1), require('worker_threads').isMainThread, require('cluster').isPrimary],
          }));
        };
    "#);
    let unsupported = |what: &str, why: &str| {
        json!([
            "ERR_HOOKGATE_UNSUPPORTED",
            format!("{what} is not available to hooks: {why}")
        ])
    };
    let sockets = "hookgate gives hooks no sockets (use fetch or http/https)";
    assert_eq!(
        got["errors"],
        json!({
            "fs": unsupported("fs.readFileSync", "hookgate runs hooks without a filesystem"),
            "child_process": unsupported("child_process.execSync", "hookgate runs hooks without processes"),
            "http2": unsupported("http2.connect", sockets),
            "cluster": unsupported("cluster.fork", "hookgate runs hooks without processes"),
            "dgram": unsupported("dgram.createSocket", "hookgate gives hooks no sockets"),
            "worker_threads": unsupported("worker_threads.Worker", "hookgate runs each hook call on one thread"),
            "vm": unsupported("vm.runInNewContext", "hookgate gives hooks no separate JS contexts"),
            "tty": unsupported("tty.WriteStream", "hooks have no terminal"),
            "process_exit": unsupported("process.exit(1)", "a hook ends by calling cb"),
        })
    );
    assert_eq!(
        got["promises"],
        unsupported(
            "fs.promises.readFile",
            "hookgate runs hooks without a filesystem"
        )
    );
    assert_eq!(got["existsSync"], json!(false));
    assert_eq!(got["constants"], json!([4, "function"]));
    // Node 20's answers for the same addresses.
    assert_eq!(
        got["ips"],
        node(
            "[[4,true,false],[0,false,false],[6,false,true],[6,false,true],[6,false,true],[6,false,true],[0,false,false],[0,false,false],[0,false,false],[0,false,false],[0,false,false],[0,false,false]]"
        )
    );
    assert_eq!(got["flags"], json!([false, true, true]));
}

/// Every built-in loads in a hook, by its name and its `node:` name, and they share one Buffer and
/// one EventEmitter (the globals included).
#[test]
fn every_builtin_loads_and_they_share_buffer_and_events() {
    let got = run(r#"
        const mods = {
          assert: require('assert'), buffer: require('buffer'), events: require('events'), path: require('path'),
          punycode: require('punycode'), querystring: require('querystring'), stream: require('stream'),
          string_decoder: require('string_decoder'), url: require('url'), util: require('util'),
          'assert/strict': require('assert/strict'), 'path/posix': require('path/posix'),
          'stream/promises': require('stream/promises'), 'timers/promises': require('timers/promises'),
          'util/types': require('util/types'), os: require('os'), process: require('process'), timers: require('timers'),
          tty: require('tty'), child_process: require('child_process'), cluster: require('cluster'), dgram: require('dgram'),
          dns: require('dns'), fs: require('fs'), http2: require('http2'), net: require('net'), tls: require('tls'),
          vm: require('vm'), worker_threads: require('worker_threads'),
        };
        module.exports = function (cb) {
          const types = {};
          for (const k of Object.keys(mods)) types[k] = typeof mods[k];
          const { StringDecoder } = require('node:string_decoder');
          cb(null, {
            types,
            node: require('node:buffer') === mods.buffer && require('node:util') === mods.util && require('node:stream/promises') === mods['stream/promises'],
            oneBuffer: [Buffer === mods.buffer.Buffer, Buffer.isBuffer(new mods.stream.PassThrough().read() || Buffer.alloc(0)),
              typeof new StringDecoder().write(Buffer.from('x'))],
            oneEmitter: new mods.stream.Readable() instanceof mods.events && typeof process.on === 'function',
            os: [mods.os.EOL, mods.os.platform(), mods.os.arch(), mods.os.hostname(), mods.os.tmpdir(), mods.os.cpus(),
              typeof mods.os.totalmem(), typeof mods.os.freemem(), mods.os.type(), mods.os.endianness(), mods.os.networkInterfaces()],
          });
        };
    "#);
    let mut types = serde_json::Map::new();
    for name in [
        "assert",
        "buffer",
        "events",
        "path",
        "punycode",
        "querystring",
        "stream",
        "string_decoder",
        "url",
        "util",
        "assert/strict",
        "path/posix",
        "stream/promises",
        "timers/promises",
        "util/types",
        "os",
        "process",
        "timers",
        "tty",
        "child_process",
        "cluster",
        "dgram",
        "dns",
        "fs",
        "http2",
        "net",
        "tls",
        "vm",
        "worker_threads",
    ] {
        // Node's own answer for typeof require(name).
        let t = if ["assert", "events", "stream", "assert/strict"].contains(&name) {
            "function"
        } else {
            "object"
        };
        types.insert(name.into(), json!(t));
    }
    assert_eq!(got["types"], Value::Object(types));
    assert_eq!(got["node"], json!(true));
    assert_eq!(got["oneBuffer"], json!([true, true, "string"]));
    assert_eq!(got["oneEmitter"], json!(true));
    assert_eq!(
        got["os"],
        json!([
            "\n",
            "linux",
            "x64",
            "hookgate",
            "/tmp",
            [],
            "number",
            "number",
            "Linux",
            "LE",
            {}
        ])
    );
}
