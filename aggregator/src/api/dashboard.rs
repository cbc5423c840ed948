//! The node staff's dashboard: a small page application served from assets
//! compiled into the binary (no CDN, works offline): native ES modules with
//! no build step, `app.js` the entry, one module per page under `pages/`,
//! the words of both languages in `catalog.json`. Charts are uPlot
//! (MIT, vendored unmodified under `assets/vendor/uplot`). The page talks
//! to the same `/api/v1` as everyone else, with a session cookie and the
//! CSRF token it is given at sign-in.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

use crate::{api::Problem, i18n::Text};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json; charset=utf-8";

/// Assets by their path under `assets/`, each compiled in.
macro_rules! assets {
    ($($path:literal => $content_type:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/", $path)),
        }),*]
    };
}

// Every file the page loads: the modules import each other by these paths.
// A test below fails on a file under `assets/` left out.
const ASSETS: &[Asset] = assets![
    "index.html" => HTML,
    "app.js" => JS,
    "app.css" => CSS,
    "api.js" => JS,
    "catalog.json" => JSON,
    "charts.js" => JS,
    "dom.js" => JS,
    "i18n.js" => JS,
    "roles.js" => JS,
    "pages/accounts.js" => JS,
    "pages/alerts.js" => JS,
    "pages/audit.js" => JS,
    "pages/hosts.js" => JS,
    "pages/lines.js" => JS,
    "pages/me.js" => JS,
    "pages/nodes.js" => JS,
    "pages/overview.js" => JS,
    "pages/prices.js" => JS,
    "pages/providers.js" => JS,
    "pages/receivers.js" => JS,
    "pages/register.js" => JS,
    "pages/registrations.js" => JS,
    "pages/resources.js" => JS,
    "pages/rules.js" => JS,
    "pages/selection.js" => JS,
    "pages/selections.js" => JS,
    "pages/tokens.js" => JS,
    "vendor/uplot/uPlot.iife.min.js" => JS,
    "vendor/uplot/uPlot.min.css" => CSS,
];

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { asset("index.html", &headers) }),
        )
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>, headers: HeaderMap| async move { asset(&path, &headers) }),
        )
}

/// Each asset's entity tag, a digest of its bytes: a browser revalidating
/// its copy (`no-cache`) is answered 304 with no body while the binary is
/// the same, instead of every module again on every load.
static TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = ring::digest::digest(&ring::digest::SHA256, a.body);
            let hex: String = digest.as_ref()[..12]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("\"{hex}\"")
        })
        .collect()
});

fn asset(path: &str, request: &HeaderMap) -> Response {
    let Some(at) = ASSETS.iter().position(|a| a.path == path) else {
        return Problem::text(StatusCode::NOT_FOUND, Text::new("error.dashboard.no_asset"))
            .into_response();
    };
    let asset = &ASSETS[at];
    let tag = &TAGS[at];
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().trim_start_matches("W/") == tag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, asset.body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Everything the page needs comes from here; nothing inline, no framing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use std::path::{Path as FsPath, PathBuf};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The type a file is served as, by its extension; `None`: not served.
    fn content_type_for(path: &str) -> Option<&'static str> {
        match path.rsplit_once('.')?.1 {
            "html" => Some(HTML),
            "js" => Some(JS),
            "css" => Some(CSS),
            "json" => Some(JSON),
            _ => None,
        }
    }

    fn files(dir: &FsPath, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    // A module left out of ASSETS is a 404 in the browser and a console
    // that never starts: caught here instead.
    #[test]
    fn every_file_under_assets_is_served_with_its_type() {
        let root = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut found = Vec::new();
        files(&root, &mut found);
        let mut served = 0;
        for file in found {
            let relative = file.strip_prefix(&root).unwrap();
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_str().unwrap())
                .collect::<Vec<_>>()
                .join("/");
            let Some(expected) = content_type_for(&relative) else {
                continue;
            };
            let asset = ASSETS
                .iter()
                .find(|a| a.path == relative)
                .unwrap_or_else(|| panic!("assets/{relative} is not in ASSETS"));
            assert_eq!(asset.content_type, expected, "{relative}");
            served += 1;
        }
        // Each entry is a file found above, once.
        assert_eq!(served, ASSETS.len(), "ASSETS lists a path twice");
    }

    /// The status line and headers of `GET path`, lowercased.
    async fn head_of(addr: std::net::SocketAddr, path: &str) -> String {
        head_with(addr, path, "X-Nothing: 1").await
    }

    /// The same, with one more request header.
    async fn head_with(addr: std::net::SocketAddr, path: &str, extra: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).await.unwrap();
        let reply = String::from_utf8_lossy(&reply);
        let head = reply.split("\r\n\r\n").next().unwrap_or_default();
        head.to_ascii_lowercase()
    }

    // Nested paths (`pages/…`, `vendor/…`) come through `/ui/{*path}` whole.
    #[tokio::test]
    async fn nested_modules_are_served_under_ui() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router::<()>()).await });
        for (path, content_type) in [
            ("/ui/", HTML),
            ("/ui/app.js", JS),
            ("/ui/pages/hosts.js", JS),
            ("/ui/catalog.json", JSON),
            ("/ui/vendor/uplot/uPlot.iife.min.js", JS),
        ] {
            let head = head_of(addr, path).await;
            assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
            assert!(
                head.contains(&format!("content-type: {content_type}")),
                "{path}: {head}"
            );
        }
        for path in ["/ui/pages/nope.js", "/ui/pages/", "/ui/../app.js"] {
            let head = head_of(addr, path).await;
            assert!(head.starts_with("http/1.1 404"), "{path}: {head}");
        }
        // A copy the browser holds is confirmed, not sent again.
        let head = head_of(addr, "/ui/app.js").await;
        let tag = head
            .lines()
            .find_map(|l| l.strip_prefix("etag: "))
            .unwrap()
            .to_owned();
        let again = head_with(addr, "/ui/app.js", &format!("If-None-Match: {tag}")).await;
        assert!(again.starts_with("http/1.1 304"), "{again}");
        let other = head_with(addr, "/ui/app.js", "If-None-Match: \"stale\"").await;
        assert!(other.starts_with("http/1.1 200"), "{other}");
    }
}
