//! One release's core metadata from the index, the cheapest way that is
//! reliable: the PEP 658 `.metadata` file of a wheel (asked for at the same
//! time as the wheel's tail, since many indexes lack it), else the wheel's
//! `*.dist-info/METADATA` read through HTTP range requests over its zip
//! central directory; for a release with no wheel, its source archive
//! ([`super::sdist`]). Nothing is downloaded whole.

use std::io::Read as _;

use super::http::{Client, Get, HttpError, METADATA_CAP, Priority, RANGE_CAP, Reply};
use super::sdist::{self, SdistFiles, SdistSource};
use super::zipmeta::{self, Entry, Window};
use crate::python::{Version, parse_name, parse_version};
use crate::record::Distribution;
use crate::record::metadata::{CoreMetadata, parse_metadata};
use crate::record::tags::{WheelTarget, is_sdist, parse_wheel_filename};

/// How a release's metadata was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataSource {
    /// The wheel's PEP 658 `.metadata` file.
    Pep658,
    /// The wheel's METADATA through range requests.
    WheelRange,
    /// A source archive's PKG-INFO.
    SdistPkgInfo,
    /// A source archive's egg-info/requires.txt.
    SdistEggInfo,
    /// A source archive's static pyproject.toml.
    SdistPyproject,
    /// A source archive's setup.py and setup.cfg, read without running them.
    SdistSetupPy,
}

impl MetadataSource {
    /// Name stored in the knowledge base and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pep658 => "pep658",
            Self::WheelRange => "wheel-range",
            Self::SdistPkgInfo => "sdist-pkg-info",
            Self::SdistEggInfo => "sdist-egg-info",
            Self::SdistPyproject => "sdist-pyproject",
            Self::SdistSetupPy => "sdist-setup-py",
        }
    }
}

/// Metadata read for a release.
#[derive(Debug, Clone)]
pub struct MetadataRead {
    /// The parsed metadata.
    pub metadata: CoreMetadata,
    /// How.
    pub source: MetadataSource,
    /// The file it was read from.
    pub file: String,
}

/// Why a release's metadata could not be read.
#[derive(Debug, Clone)]
pub enum MetadataError {
    /// The release's files do not give it; `lasting` when that is a fact
    /// about the release (worth remembering) rather than about the server.
    Unavailable {
        /// For people.
        reason: String,
        /// Remember it.
        lasting: bool,
    },
    /// The network failed.
    Http(HttpError),
}

impl From<HttpError> for MetadataError {
    fn from(e: HttpError) -> Self {
        Self::Http(e)
    }
}

fn unavailable(reason: impl Into<String>, lasting: bool) -> MetadataError {
    MetadataError::Unavailable {
        reason: reason.into(),
        lasting,
    }
}

/// The file whose metadata is read: a wheel for the target (pure ones
/// first), else any wheel, else a source archive.
pub fn choose<'a>(
    files: &'a [Distribution],
    target: Option<&WheelTarget>,
) -> Option<&'a Distribution> {
    let rank = |d: &Distribution| -> Option<u8> {
        if is_sdist(&d.filename) {
            let f = d.filename.to_ascii_lowercase();
            return Some(if f.ends_with(".tar.gz") || f.ends_with(".tgz") {
                10
            } else if f.ends_with(".zip") {
                11
            } else {
                12
            });
        }
        let tags = parse_wheel_filename(&d.filename)?;
        let pure = tags.platform.iter().any(|p| p == "any") && tags.abi.iter().any(|a| a == "none");
        let fits = target.is_none_or(|t| t.accepts_filename(&d.filename));
        Some(match (fits, pure) {
            (true, true) => 0,
            (true, false) => 1,
            (false, true) => 2,
            (false, false) => 3,
        })
    };
    files
        .iter()
        .filter_map(|d| rank(d).map(|r| (r, d)))
        .min_by_key(|(r, d)| (*r, d.filename.as_str()))
        .map(|(_, d)| d)
}

/// Why a metadata file is not the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// No `Metadata-Version` header near the top.
    #[error("the answer is not a core metadata file")]
    NotMetadata,
    /// Another project's name.
    #[error("the metadata names another project ({0})")]
    Project(String),
    /// Another version.
    #[error("the metadata names another version ({0})")]
    Version(String),
}

/// Does `text` look like core metadata of `project` at `version`?
pub fn check_metadata(
    text: &str,
    project: &str,
    version: &Version,
) -> Result<CoreMetadata, Mismatch> {
    let head: String = text.lines().take(40).collect::<Vec<_>>().join("\n");
    if !head.to_ascii_lowercase().contains("metadata-version:") {
        return Err(Mismatch::NotMetadata);
    }
    let meta = parse_metadata(text);
    if let Some(name) = &meta.name
        && parse_name(name).is_ok_and(|n| n.as_ref() != project)
    {
        return Err(Mismatch::Project(name.clone()));
    }
    if let Some(v) = &meta.version
        && parse_version(v).is_ok_and(|v| &v != version)
    {
        return Err(Mismatch::Version(v.clone()));
    }
    Ok(meta)
}

/// Read the metadata of `project` `version` from its `files` (URLs as
/// listed on the index page).
pub async fn read_release(
    client: &Client,
    project: &str,
    version: &Version,
    files: &[Distribution],
    target: Option<&WheelTarget>,
    priority: &Priority,
) -> Result<MetadataRead, MetadataError> {
    let Some(file) = choose(files, target) else {
        return Err(unavailable(
            "none of its files is a wheel or a source archive",
            true,
        ));
    };
    let Some(url) = file.url.as_deref() else {
        return Err(unavailable("the index gave no URL for its files", false));
    };
    if !is_sdist(&file.filename) {
        return wheel(client, project, version, &file.filename, url, priority).await;
    }
    let lower = file.filename.to_ascii_lowercase();
    let files = if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        tar_gz(client, url, priority).await?
    } else if lower.ends_with(".zip") {
        let remote = Remote::open(client, url, priority).await?;
        zip_sdist(&remote).await?
    } else {
        return Err(unavailable(
            format!(
                "it exists only as a source archive of a format thoth-rs does not read ({})",
                file.filename
            ),
            true,
        ));
    };
    match sdist::metadata_from(&files) {
        Ok((metadata, how)) => Ok(MetadataRead {
            metadata,
            source: match how {
                SdistSource::PkgInfo => MetadataSource::SdistPkgInfo,
                SdistSource::EggInfo => MetadataSource::SdistEggInfo,
                SdistSource::Pyproject => MetadataSource::SdistPyproject,
                SdistSource::SetupPy => MetadataSource::SdistSetupPy,
            },
            file: file.filename.clone(),
        }),
        Err(reason) => Err(unavailable(reason.to_string(), true)),
    }
}

async fn wheel(
    client: &Client,
    project: &str,
    version: &Version,
    filename: &str,
    url: &str,
    priority: &Priority,
) -> Result<MetadataRead, MetadataError> {
    let metadata_url = format!("{url}.metadata");
    let pep658_get = Get {
        url: &metadata_url,
        cap: METADATA_CAP,
        priority: priority.clone(),
        ..Get::default()
    };
    let pep658 = client.get(&pep658_get);
    let tail = Remote::open(client, url, priority);
    tokio::pin!(pep658, tail);
    // Both go out at once: many indexes have no `.metadata` files, and
    // waiting for the 404 first would cost a round trip on every wheel.
    let (first, early_tail) = tokio::select! {
        m = &mut pep658 => (m, None),
        t = &mut tail => (pep658.await, Some(t)),
    };
    let via_pep658 = match first {
        Ok(Reply::Body { bytes, .. }) => {
            match check_metadata(&String::from_utf8_lossy(&bytes), project, version) {
                Ok(metadata) => Some(metadata),
                Err(why) => {
                    tracing::debug!(
                        "{}: {why}; reading the wheel instead",
                        super::redact(&metadata_url)
                    );
                    None
                }
            }
        }
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("{e}; reading the wheel instead");
            None
        }
    };
    if let Some(metadata) = via_pep658 {
        return Ok(MetadataRead {
            metadata,
            source: MetadataSource::Pep658,
            file: filename.to_string(),
        });
    }
    let remote = match early_tail {
        Some(t) => t?,
        None => tail.await?,
    };
    let directory = remote.central_directory().await?;
    let entry = zipmeta::entries(&directory)
        .map_err(|e| unavailable(format!("its wheel {filename} is damaged: {e}"), true))?
        .into_iter()
        .find(|e| zipmeta::is_wheel_metadata(&e.name))
        .ok_or_else(|| unavailable(format!("its wheel {filename} has no METADATA"), true))?;
    let text = remote.member(&entry).await?;
    let metadata = check_metadata(&text, project, version)
        .map_err(|why| unavailable(format!("its wheel {filename}: {why}"), true))?;
    Ok(MetadataRead {
        metadata,
        source: MetadataSource::WheelRange,
        file: filename.to_string(),
    })
}

/// A remote zip file read by ranges, starting from its last 64 KiB.
struct Remote<'c> {
    client: &'c Client,
    url: String,
    tail: Window,
    priority: Priority,
}

impl<'c> Remote<'c> {
    async fn open(
        client: &'c Client,
        url: &str,
        priority: &Priority,
    ) -> Result<Remote<'c>, MetadataError> {
        let reply = client
            .get(&Get {
                url,
                range: Some("bytes=-65536".into()),
                cap: RANGE_CAP,
                priority: priority.clone(),
                ..Get::default()
            })
            .await;
        let tail = match reply {
            Ok(Reply::Body {
                bytes,
                partial,
                total,
                ..
            }) => {
                let offset = if partial {
                    total.saturating_sub(bytes.len() as u64)
                } else {
                    0
                };
                Window {
                    offset,
                    total: if partial { total } else { bytes.len() as u64 },
                    bytes,
                }
            }
            Ok(Reply::NotFound) => {
                return Err(unavailable(
                    "a file listed on the index is missing from it",
                    false,
                ));
            }
            Ok(Reply::NotModified(_)) => {
                return Err(unavailable(
                    "the index answered 304 to a plain request",
                    false,
                ));
            }
            Err(HttpError::TooLarge { .. }) => {
                return Err(unavailable(
                    "the index ignores range requests and the archive is larger than the range cap",
                    false,
                ));
            }
            Err(e) => return Err(MetadataError::Http(e)),
        };
        Ok(Remote {
            client,
            url: url.to_string(),
            tail,
            priority: priority.clone(),
        })
    }

    /// `len` bytes at `start`, from the tail when it holds them.
    async fn bytes(&self, start: u64, len: u64) -> Result<Vec<u8>, MetadataError> {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= self.tail.total)
            .ok_or_else(|| unavailable("the archive's directory points outside it", true))?;
        if len > RANGE_CAP {
            return Err(unavailable(
                format!("the archive asks for a {len}-byte read, over the cap"),
                true,
            ));
        }
        if start >= self.tail.offset
            && let Some(slice) = self
                .tail
                .bytes
                .get((start - self.tail.offset) as usize..(end - self.tail.offset) as usize)
        {
            return Ok(slice.to_vec());
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        match self
            .client
            .get(&Get {
                url: &self.url,
                range: Some(format!("bytes={start}-{}", end - 1)),
                cap: RANGE_CAP,
                priority: self.priority.clone(),
                ..Get::default()
            })
            .await?
        {
            Reply::Body {
                bytes,
                partial: true,
                ..
            } if bytes.len() as u64 == len => Ok(bytes),
            Reply::Body {
                bytes,
                partial: false,
                ..
            } => bytes
                .get(start as usize..end as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| unavailable("the index answered a short range", false)),
            _ => Err(unavailable(
                "the index answered a range request wrongly",
                false,
            )),
        }
    }

    async fn central_directory(&self) -> Result<Vec<u8>, MetadataError> {
        let (offset, size) = zipmeta::find_central_directory(&self.tail)
            .map_err(|e| unavailable(format!("not a readable zip archive: {e}"), true))?;
        self.bytes(offset, size).await
    }

    /// The member's content, inflated.
    async fn member(&self, entry: &Entry) -> Result<String, MetadataError> {
        if entry.compressed > zipmeta::INFLATE_CAP {
            return Err(unavailable(
                format!("{} is larger than the cap", entry.name),
                true,
            ));
        }
        // One read usually covers the local header, its name and the data.
        let guess = (30 + 512 + entry.compressed).min(self.tail.total.saturating_sub(entry.local));
        let chunk = self.bytes(entry.local, guess).await?;
        let (start, len) = zipmeta::local_data_range(&chunk, entry.local, entry.compressed)
            .map_err(|e| unavailable(format!("damaged zip archive: {e}"), true))?;
        let data =
            match chunk.get((start - entry.local) as usize..(start - entry.local + len) as usize) {
                Some(d) => d.to_vec(),
                None => self.bytes(start, len).await?,
            };
        zipmeta::decompress(&data, entry.method)
            .map_err(|e| unavailable(format!("damaged zip archive: {e}"), true))
    }
}

async fn zip_sdist(remote: &Remote<'_>) -> Result<SdistFiles, MetadataError> {
    let directory = remote.central_directory().await?;
    let entries = zipmeta::entries(&directory)
        .map_err(|e| unavailable(format!("damaged zip archive: {e}"), true))?;
    let mut files = SdistFiles::default();
    for entry in &entries {
        let Some(kind) = sdist::wanted(&entry.name) else {
            continue;
        };
        let content = match kind {
            sdist::Wanted::PkgInfo
            | sdist::Wanted::RequiresTxt
            | sdist::Wanted::Pyproject
            | sdist::Wanted::SetupPy
            | sdist::Wanted::SetupCfg => {
                if entry.compressed > sdist::FILE_CAP {
                    continue;
                }
                Some(remote.member(entry).await?)
            }
            _ => None,
        };
        files.add(kind, content);
    }
    Ok(files)
}

/// Decompressed bytes of a source archive read at most (512 MiB).
const TAR_CAP: u64 = 512 << 20;

/// Feeds a blocking reader from chunks arriving on a channel.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

async fn tar_gz(
    client: &Client,
    url: &str,
    priority: &Priority,
) -> Result<SdistFiles, MetadataError> {
    let Some((mut response, permit)) = client
        .open(&Get {
            url,
            cap: sdist::SDIST_CAP,
            priority: priority.clone(),
            ..Get::default()
        })
        .await?
    else {
        return Err(unavailable(
            "a file listed on the index is missing from it",
            false,
        ));
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let scan = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        };
        sdist::scan_tar(flate2::read::GzDecoder::new(reader).take(TAR_CAP))
    });
    let mut read = 0u64;
    let mut over = false;
    let mut failed = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                client
                    .stats
                    .bytes
                    .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if read > sdist::SDIST_CAP {
                    over = true;
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    // The reader has what it needs.
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                failed = Some(super::redact(&super::http::error_chain(&e)));
                break;
            }
        }
    }
    drop(tx);
    drop(response);
    drop(permit);
    let scanned = scan
        .await
        .map_err(|e| unavailable(format!("reading the source archive failed: {e}"), false))?;
    if let Some(message) = failed {
        return Err(MetadataError::Http(HttpError::Network {
            url: super::redact(url),
            message,
        }));
    }
    match scanned {
        Ok(files) if !over || files.settled() => Ok(files),
        _ if over => Err(unavailable(
            format!(
                "its source archive is larger than {} MiB before its metadata was found",
                sdist::SDIST_CAP >> 20
            ),
            true,
        )),
        Ok(files) => Ok(files),
        Err(e) => Err(unavailable(
            format!("its source archive cannot be read: {e}"),
            true,
        )),
    }
}
