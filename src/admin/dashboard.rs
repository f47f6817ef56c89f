//! The dashboard: the web page served at `/dashboard/` on the management API's HTTPS listener,
//! a client of that API and nothing more. Its three files are built from `dashboard/` (CodeMirror
//! 6 and plain JavaScript, bundled by esbuild; `npm ci && node build.mjs` there) into
//! `src/admin/dashboard/*.gz`, committed, and embedded here: no CDN, works offline.
//!
//! These routes are mounted beside the API's and outside its token check: a browser navigating
//! to the page cannot send a bearer header, and the page holds nothing secret. Everything the page
//! shows comes from API calls that carry the admin token the user signs in with.
//!
//! Headers: a strict Content-Security-Policy (scripts, styles and connections from this origin
//! only; no inline script or style; no framing, no `<base>`, no form submission), `X-Frame-Options:
//! DENY` (clickjacking), `nosniff`, `no-referrer`, and revalidation by ETag.
//!
//! Owns: the embedded assets and how they are served. Must not: call the API itself, read or
//! hold a token, or serve anything but these files.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

/// The Content-Security-Policy of every dashboard file.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its gzip bytes as built, the inflated bytes (made on first need, for a
/// client that does not accept gzip), and its ETag (made on first need).
struct Asset {
    gzip: &'static [u8],
    content_type: &'static str,
    plain: OnceLock<Vec<u8>>,
    etag: OnceLock<String>,
}

impl Asset {
    const fn new(gzip: &'static [u8], content_type: &'static str) -> Asset {
        Asset {
            gzip,
            content_type,
            plain: OnceLock::new(),
            etag: OnceLock::new(),
        }
    }

    fn plain(&self) -> &[u8] {
        self.plain.get_or_init(|| inflate(self.gzip))
    }

    fn etag(&self) -> &str {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.gzip);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
    }
}

fn inflate(gzip: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    // Built by dashboard/build.mjs and checked by this module's tests: cannot fail at run time.
    flate2::read::GzDecoder::new(gzip)
        .read_to_end(&mut out)
        .expect("the embedded dashboard assets are valid gzip");
    out
}

static INDEX: Asset = Asset::new(
    include_bytes!("dashboard/index.html.gz"),
    "text/html; charset=utf-8",
);
static APP_JS: Asset = Asset::new(
    include_bytes!("dashboard/app.js.gz"),
    "text/javascript; charset=utf-8",
);
static APP_CSS: Asset = Asset::new(
    include_bytes!("dashboard/app.css.gz"),
    "text/css; charset=utf-8",
);

/// The embedded assets' sizes, gzip as embedded: (name, bytes).
pub fn embedded_sizes() -> [(&'static str, usize); 3] {
    [
        ("index.html", INDEX.gzip.len()),
        ("app.js", APP_JS.gzip.len()),
        ("app.css", APP_CSS.gzip.len()),
    ]
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            // `gzip;q=0` refuses it.
            let refused = parts.any(|p| p.replace(' ', "") == "q=0" || p == "q=0.0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let etag = asset.etag();
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let mut res = asset.gzip.into_response();
        res.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        res
    } else {
        asset.plain().into_response()
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("hex in quotes"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Revalidate every time (cheap: a 304), so a new hookgate's dashboard is never mixed with
    // an old cached script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h);
    res
}

/// The headers every dashboard answer carries.
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// The dashboard's routes: `/dashboard/` (the page), `/dashboard/app.js`, `/dashboard/app.css`;
/// `/dashboard` redirects to `/dashboard/` (the page loads its files relative to it).
pub fn router() -> Router {
    Router::new()
        .route(
            "/dashboard",
            get(|| async {
                let mut res = Redirect::permanent("/dashboard/").into_response();
                security_headers(res.headers_mut());
                res
            }),
        )
        .route(
            "/dashboard/",
            get(|headers: HeaderMap| async move { serve(&INDEX, &headers) }),
        )
        .route(
            "/dashboard/app.js",
            get(|headers: HeaderMap| async move { serve(&APP_JS, &headers) }),
        )
        .route(
            "/dashboard/app.css",
            get(|headers: HeaderMap| async move { serve(&APP_CSS, &headers) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_asset_inflates_to_what_its_type_says() {
        let html = String::from_utf8(inflate(INDEX.gzip)).unwrap();
        assert!(html.contains("<script src=\"app.js\""), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "inline script or style would be refused by the CSP: {html}"
        );
        assert!(String::from_utf8(inflate(APP_JS.gzip))
            .unwrap()
            .contains("/api/hookgate/"));
        assert!(!inflate(APP_CSS.gzip).is_empty());
    }

    #[test]
    fn gzip_is_served_only_to_clients_that_accept_it() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br".parse().unwrap(),
        );
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "br, gzip;q=0".parse().unwrap());
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "identity".parse().unwrap());
        assert!(!accepts_gzip(&h));
    }
}
