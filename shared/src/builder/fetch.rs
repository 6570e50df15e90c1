//! ADD's remote sources: a URL fetched into the store's scratch space,
//! checked against `--checksum`, dated by its Last-Modified header.

use crate::digest::Digest;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// A downloaded file, ready to be copied like a context file.
pub struct Downloaded {
    /// Holds the file; removed on drop.
    _dir: crate::store::Scratch,
    /// `<dir>/<name>`: the name is the URL's last path segment.
    pub path: PathBuf,
    pub name: String,
    pub digest: Digest,
}

/// The file name Docker gives a URL's download.
pub fn url_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    after_host
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("__unnamed__")
        .to_string()
}

/// Fetches `url` into a fresh directory under `scratch`, mode 0600 as
/// Docker leaves remote files, verifying `checksum` (`sha256:<hex>`).
pub fn download(
    url: &str,
    checksum: Option<&str>,
    store: &crate::store::Store,
) -> Result<Downloaded, String> {
    let expected = checksum
        .map(|c| {
            c.parse::<Digest>()
                .map_err(|e| format!("invalid checksum {c:?}: {e}"))
        })
        .transpose()?;
    // reqwest has no bundled crypto provider; the registry code installs
    // ring the same way.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the network runtime: {e}"))?;
    let (bytes, modified) = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: the server answered {}", response.status()));
        }
        let modified = response
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date);
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        Ok::<_, String>((bytes, modified))
    })?;
    drop(runtime);
    let digest = Digest::of(&bytes);
    if let Some(expected) = expected
        && expected != digest
    {
        return Err(format!(
            "{url}: checksum mismatch: expected {expected}, got {digest}"
        ));
    }
    // Locked while it lives, so a sweep knows a killed build's from ours.
    let dir = crate::store::Scratch::new(store, "add-").map_err(|e| e.to_string())?;
    let name = url_name(url);
    let path = dir.path().join(&name);
    let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(modified) = modified {
        file.set_modified(modified)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(Downloaded {
        _dir: dir,
        path,
        name,
        digest,
    })
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP servers send.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as u32
        + 1;
    let rfc3339 = format!("{year}-{month:02}-{:02}T{clock}Z", day.parse::<u32>().ok()?);
    crate::format::human::parse_rfc3339(&rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_last_path_segment() {
        assert_eq!(
            url_name("http://127.0.0.1:8000/a/b/file.tar.gz?x=1"),
            "file.tar.gz"
        );
        assert_eq!(url_name("http://host/dir/"), "dir");
        assert_eq!(url_name("http://host"), "__unnamed__");
    }

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert!(parse_http_date("yesterday").is_none());
    }
}
