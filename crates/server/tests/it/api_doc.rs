//! docs/openapi.yaml cannot drift from the router silently: every `.route(PATH, METHODS)` in
//! the server's source must be listed there with the same methods, and nothing more; and
//! every listed (method, path) must reach a handler of the real binary (not the router's
//! empty 404 or its 405).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::common::*;

/// (METHOD, path with every `{param}` written `{}`).
type Route = (String, String);

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `/v1/files/{id}` → `/v1/files/{}`: parameter names are the code's business.
fn normalize(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of the call starting at `open` (just after its `(`), up to the matching `)`.
fn call_args(text: &str, open: usize) -> &str {
    let mut depth = 1;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced .route( call")
}

/// Method routers named in a handler expression: `get(h)`, `axum::routing::get(h)`,
/// `get(a).delete(b)`.
fn methods_in(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut found = Vec::new();
    for m in METHODS {
        let mut from = 0;
        while let Some(i) = expr[from..].find(m).map(|i| i + from) {
            from = i + m.len();
            let before_ok =
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            let after = expr[from..].trim_start();
            if before_ok && after.starts_with('(') {
                found.push(m.to_ascii_uppercase());
            }
        }
    }
    found
}

/// Every route the server's source registers.
fn routes_in_source() -> BTreeSet<Route> {
    let mut files = Vec::new();
    rust_files(&manifest().join("src"), &mut files);
    let mut routes = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for unsupported in [".nest(", ".route_service(", ".nest_service(", ".fallback("] {
            assert!(
                !text.contains(unsupported),
                "{}: uses {unsupported}; teach tests/it/api_doc.rs to read it",
                f.display()
            );
        }
        let mut from = 0;
        while let Some(i) = text[from..].find(".route(").map(|i| i + from) {
            let open = i + ".route(".len();
            from = open;
            let args = call_args(&text, open);
            let rest = args.trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                // Another type's `route` method (`self.route(event)`); an axum route whose
                // path is not a literal would name a method router: refuse that.
                assert!(
                    methods_in(args).is_empty(),
                    "{}: .route( with a path that is not a string literal: {args}",
                    f.display()
                );
                continue;
            };
            let end = rest.find('"').unwrap();
            let path = &rest[..end];
            let methods = methods_in(&rest[end + 1..]);
            assert!(
                !methods.is_empty(),
                "{}: no method router found for {path}",
                f.display()
            );
            for m in methods {
                routes.insert((m, normalize(path)));
            }
        }
    }
    routes
}

/// The (method, path) pairs under `paths:` in docs/openapi.yaml (two-space indentation:
/// paths at 2, methods at 4).
fn routes_in_openapi() -> BTreeSet<Route> {
    let text = std::fs::read_to_string(manifest().join("../../docs/openapi.yaml")).unwrap();
    let mut routes = BTreeSet::new();
    let mut in_paths = false;
    let mut path: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            in_paths = line.trim_end() == "paths:";
            path = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        let key = line.trim().trim_end_matches(':');
        if indent == 2 {
            assert!(line.trim_end().ends_with(':'), "paths entry: {line}");
            assert!(key.starts_with('/'), "paths entry: {line}");
            path = Some(normalize(key));
        } else if indent == 4 && METHODS.contains(&key) {
            let p = path.clone().expect("a method outside a path");
            routes.insert((key.to_ascii_uppercase(), p));
        }
    }
    routes
}

#[test]
fn openapi_lists_exactly_the_routes_of_the_source() {
    let source = routes_in_source();
    let doc = routes_in_openapi();
    // The parsers themselves found what is known to be there.
    for known in [
        ("GET", "/healthz"),
        ("DELETE", "/v1/files/{}"),
        ("GET", "/v1/recordings"),
    ] {
        let r = (known.0.to_string(), known.1.to_string());
        assert!(
            source.contains(&r),
            "source parser missed {known:?}: {source:?}"
        );
        assert!(doc.contains(&r), "openapi parser missed {known:?}: {doc:?}");
    }
    let undocumented: Vec<_> = source.difference(&doc).collect();
    let unserved: Vec<_> = doc.difference(&source).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "docs/openapi.yaml (and docs/api.md) must list every route the server serves.\n\
         served but not documented: {undocumented:?}\n\
         documented but not served: {unserved:?}"
    );
}

#[test]
fn helpers_read_what_they_should() {
    assert_eq!(normalize("/v1/files/{id}"), "/v1/files/{}");
    assert_eq!(normalize("/a/{x}/b/{y}"), "/a/{}/b/{}");
    assert_eq!(
        methods_in(" get(files::download).delete(files::remove)"),
        ["GET", "DELETE"]
    );
    assert_eq!(methods_in(" axum::routing::get(healthz)"), ["GET"]);
    assert!(methods_in(" forget(x)").is_empty());
}

/// One HTTP/1.1 exchange: (status, body).
fn exchange(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<u8>) {
    let answer = crate::security::request(addr, method, path, &[]);
    (answer.status, answer.body)
}

#[test]
fn every_documented_route_reaches_a_handler_of_the_binary() {
    let server = Server::start(ServerOptions::default());
    // The router's own answers: 404 with an empty body for unknown paths, 405 for a known
    // path with another method. A handler answers anything else (here: the API has no key,
    // so /v1 says 503 api_not_configured, in JSON).
    let (status, body) = exchange(server.http, "GET", "/no/such/route");
    assert_eq!((status, body.len()), (404, 0));
    for (method, path) in routes_in_openapi() {
        let concrete = path.replace("{}", "00000000-0000-4000-8000-000000000000");
        let (status, body) = exchange(server.http, &method, &concrete);
        assert!(
            status != 405 && !(status == 404 && body.is_empty()),
            "{method} {path}: the binary does not serve it ({status})"
        );
        if path.starts_with("/v1/") {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                (status, v["error"].as_str()),
                (503, Some("api_not_configured")),
                "{method} {path}"
            );
        } else {
            assert_eq!(status, 200, "{method} {path}");
        }
    }
}
