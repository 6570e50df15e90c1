//! Uploading one blob, as the distribution spec's push flow has it: a HEAD
//! finds it already there; a cross-repository mount borrows it from another
//! repository of the same registry; otherwise it is streamed from the
//! store, in one PUT when small and in PATCHed chunks when large, and a
//! broken chunked upload resumes from the offset the registry reports.

use super::client::{Session, attempts_for, backoff};
use crate::digest::Digest;
use bytes::Bytes;
use oci_client::errors::OciDistributionError;
use reqwest::StatusCode;
use std::io::{self, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Blobs up to this size go up in one streamed PUT: one request, no
/// per-chunk round trips. Larger ones go in chunks, so a broken transfer
/// costs at most a chunk.
pub(crate) const MONOLITHIC_LIMIT: u64 = 64 << 20;
/// The size of one PATCH of a chunked upload.
pub(crate) const CHUNK_SIZE: u64 = 32 << 20;
/// What is read from the store at a time: memory stays flat whatever the
/// blob's size.
const READ_SIZE: usize = 256 << 10;

/// How a blob came to be in the target repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uploaded {
    /// It was there already.
    Exists,
    /// The registry linked it from this other repository.
    Mounted(String),
    /// Its bytes were sent.
    Pushed,
}

/// One blob to put into one repository.
pub(crate) struct BlobUpload<'a> {
    pub session: &'a Session,
    /// The repository pushed to, for token renewal.
    pub target: &'a oci_client::Reference,
    pub digest: &'a Digest,
    pub size: u64,
    /// The blob's file in the store.
    pub path: PathBuf,
    /// Another repository of this registry that may hold the blob.
    pub mount_from: Option<String>,
    /// Bytes the registry has taken so far (read by the progress display).
    pub sent: Arc<AtomicU64>,
}

type Result<T> = std::result::Result<T, OciDistributionError>;

impl BlobUpload<'_> {
    fn blobs_path(&self) -> String {
        format!("/v2/{}/blobs/", self.target.repository())
    }

    /// Puts the blob in the repository unless it is there already. Failures
    /// worth retrying are retried (`on_retry` hears of each); a chunked
    /// upload goes on from what the registry has.
    pub async fn run(
        &self,
        on_sending: impl Fn(),
        mut on_retry: impl FnMut(u32, &OciDistributionError),
    ) -> Result<Uploaded> {
        let mut attempt = 1;
        // An upload session the registry keeps, to resume rather than restart.
        let mut session: Option<String> = None;
        let mut may_mount = self.mount_from.is_some();
        loop {
            let outcome = match attempt {
                1 => match self.exists().await {
                    Ok(true) => return Ok(Uploaded::Exists),
                    Ok(false) => {
                        self.attempt(&mut session, &mut may_mount, &on_sending)
                            .await
                    }
                    Err(e) => Err(e),
                },
                _ => {
                    self.attempt(&mut session, &mut may_mount, &on_sending)
                        .await
                }
            };
            match outcome {
                Err(e) if attempt < attempts_for(&e) => {
                    on_retry(attempt, &e);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// HEAD: whether the repository has the blob.
    async fn exists(&self) -> Result<bool> {
        let url = self
            .session
            .url(&format!("{}{}", self.blobs_path(), self.digest));
        let response = self
            .session
            .send(self.target, |http| http.head(&url))
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Session::refused(response, &url).await),
        }
    }

    async fn attempt(
        &self,
        session: &mut Option<String>,
        may_mount: &mut bool,
        on_sending: &impl Fn(),
    ) -> Result<Uploaded> {
        let resumed = match session.take() {
            Some(location) => self.status(&location).await.ok(),
            None => None,
        };
        let (mut location, offset) = match resumed {
            Some(resumed) => resumed,
            None => {
                // A mount is asked once: a registry that declines it
                // answers with an ordinary upload session instead.
                let from = self.mount_from.as_deref().filter(|_| *may_mount);
                *may_mount = false;
                match self.start(from).await? {
                    Started::Mounted => {
                        let from = from.expect("only a mount is answered so");
                        return Ok(Uploaded::Mounted(from.to_string()));
                    }
                    Started::Session(location) => (location, 0),
                }
            }
        };
        self.sent.store(offset, Ordering::Relaxed);
        on_sending();
        if offset == 0 && self.size <= MONOLITHIC_LIMIT {
            // A failed PUT ends its session: the next attempt starts anew.
            self.put(&location, Some((0, self.size))).await?;
            return Ok(Uploaded::Pushed);
        }
        let mut offset = offset;
        while offset < self.size {
            let end = (offset + CHUNK_SIZE).min(self.size);
            *session = Some(location.clone());
            location = self.patch(&location, offset, end).await?;
            offset = end;
        }
        *session = Some(location.clone());
        self.put(&location, None).await?;
        *session = None;
        Ok(Uploaded::Pushed)
    }

    /// POST: opens an upload session, or mounts the blob from `from`.
    async fn start(&self, from: Option<&str>) -> Result<Started> {
        let mut url = self.session.url(&format!("{}uploads/", self.blobs_path()));
        if let Some(from) = from {
            url.push_str(&format!("?mount={}&from={from}", self.digest));
        }
        let response = self
            .session
            .send(self.target, |http| {
                http.post(&url).header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        match response.status() {
            StatusCode::CREATED if from.is_some() => Ok(Started::Mounted),
            StatusCode::ACCEPTED => Ok(Started::Session(location(&response, &url)?)),
            _ => Err(Session::refused(response, &url).await),
        }
    }

    /// GET on an upload session: where it is now and how many bytes the
    /// registry holds (`Range: 0-<last>`; none yet without one).
    async fn status(&self, session: &str) -> Result<(String, u64)> {
        let url = self.session.url(session);
        let response = self
            .session
            .send(self.target, |http| http.get(&url))
            .await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(Session::refused(response, &url).await);
        }
        let held = response
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|range| range.split_once('-'))
            .and_then(|(_, last)| last.trim().parse::<u64>().ok())
            .map_or(0, |last| last + 1);
        Ok((
            location(&response, &url).unwrap_or(url),
            held.min(self.size),
        ))
    }

    /// PATCH: sends bytes `start..end`; returns the session's next location.
    async fn patch(&self, session: &str, start: u64, end: u64) -> Result<String> {
        let url = self.session.url(session);
        let response = self
            .session
            .send(self.target, |http| {
                http.patch(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, end - start)
                    .header("Content-Range", format!("{start}-{}", end - 1))
                    .body(self.body(start, end))
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(Session::refused(response, &url).await);
        }
        location(&response, &url)
    }

    /// PUT `?digest=`: closes the session, with the bytes `range` names or
    /// none (after chunks). The registry checks the digest itself.
    async fn put(&self, session: &str, range: Option<(u64, u64)>) -> Result<()> {
        let url = self.session.url(session);
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}digest={}", self.digest);
        let response = self
            .session
            .send(self.target, |http| {
                let request = http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream");
                match range {
                    Some((start, end)) => request
                        .header(reqwest::header::CONTENT_LENGTH, end - start)
                        .body(self.body(start, end)),
                    None => request.header(reqwest::header::CONTENT_LENGTH, 0),
                }
            })
            .await?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::ACCEPTED => Ok(()),
            _ => Err(Session::refused(response, &url).await),
        }
    }

    /// Bytes `start..end` of the blob, read as they are sent.
    fn body(&self, start: u64, end: u64) -> reqwest::Body {
        let path = self.path.clone();
        let sent = self.sent.clone();
        let stream = futures_util::stream::try_unfold(
            (None::<tokio::fs::File>, start),
            move |(file, at)| {
                let path = path.clone();
                let sent = sent.clone();
                async move {
                    if at >= end {
                        return Ok::<_, io::Error>(None);
                    }
                    let mut file = match file {
                        Some(file) => file,
                        None => {
                            let mut file = tokio::fs::File::open(&path).await?;
                            file.seek(SeekFrom::Start(at)).await?;
                            file
                        }
                    };
                    let want = (end - at).min(READ_SIZE as u64) as usize;
                    let mut buffer = vec![0; want];
                    let read = file.read(&mut buffer).await?;
                    if read == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("{} ended before its size", path.display()),
                        ));
                    }
                    buffer.truncate(read);
                    sent.store(at + read as u64, Ordering::Relaxed);
                    Ok(Some((Bytes::from(buffer), (Some(file), at + read as u64))))
                }
            },
        );
        reqwest::Body::wrap_stream(stream)
    }
}

enum Started {
    Mounted,
    Session(String),
}

/// The `Location` of an upload session a registry answered with.
fn location(response: &reqwest::Response, url: &str) -> Result<String> {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| OciDistributionError::ServerError {
            code: response.status().as_u16(),
            url: url.to_string(),
            message: "the registry sent no Location for the upload".to_string(),
        })
}
