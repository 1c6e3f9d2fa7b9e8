//! HTTP with a response cache on disk, bounded concurrency and retries.
//!
//! Successful responses and 404s are cached under a key derived from the URL
//! (and range), written through a temporary file and a rename, so a killed
//! run leaves only whole entries behind and a re-run continues from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Counters shared by all requests of a sync.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent over the network.
    pub requests: AtomicU64,
    /// Answers served from the cache.
    pub cache_hits: AtomicU64,
    /// Retried requests.
    pub retries: AtomicU64,
    /// When the oldest project page served from the cache was fetched
    /// (unix seconds; `u64::MAX` when none was).
    pub oldest_cached_page: AtomicU64,
}

impl Stats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self {
            oldest_cached_page: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }
}

/// A response worth keeping.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// 200 or 206: body and, for ranges, the total size.
    Body {
        /// Bytes.
        body: Vec<u8>,
        /// Total size from Content-Range (206) or the body length (200).
        total: u64,
        /// Was it a partial response?
        partial: bool,
    },
    /// 404 or 410.
    NotFound,
}

/// What to do with the cache for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Use a cached answer if there is one.
    Use,
    /// A project page: use a cached answer, remembering how old it is (a
    /// snapshot cannot claim to know more recent uploads than its oldest
    /// page).
    Page,
    /// Fetch again (and update the cache).
    Refresh,
}

/// The shared HTTP client.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    cache_dir: PathBuf,
    semaphore: Arc<Semaphore>,
    retries: u32,
    backoff: Duration,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl Fetcher {
    /// A client with `jobs` requests in flight at most.
    pub fn new(cache_dir: PathBuf, jobs: usize, backoff: Duration) -> Result<Self, String> {
        std::fs::create_dir_all(&cache_dir)
            .map_err(|e| format!("cannot create cache {}: {e}", cache_dir.display()))?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("thoth-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))?;
        Ok(Self {
            client,
            cache_dir,
            semaphore: Arc::new(Semaphore::new(jobs.max(1))),
            retries: 4,
            backoff,
            stats: Arc::new(Stats::new()),
        })
    }

    fn key(url: &str, range: Option<&str>) -> String {
        let mut h = Sha256::new();
        h.update(url.as_bytes());
        h.update(b"\n");
        h.update(range.unwrap_or("").as_bytes());
        hex::encode(h.finalize())
    }

    fn read_cache(&self, key: &str) -> Option<Fetched> {
        let meta = std::fs::read_to_string(self.cache_dir.join(format!("{key}.meta"))).ok()?;
        let meta: serde_json::Value = serde_json::from_str(&meta).ok()?;
        match meta["status"].as_u64()? {
            404 => Some(Fetched::NotFound),
            status => {
                let body = std::fs::read(self.cache_dir.join(format!("{key}.body"))).ok()?;
                Some(Fetched::Body {
                    total: meta["total"].as_u64().unwrap_or(body.len() as u64),
                    partial: status == 206,
                    body,
                })
            }
        }
    }

    fn write_cache(&self, key: &str, fetched: &Fetched) {
        let write = |name: String, bytes: &[u8]| {
            let _ = crate::write::write_atomic(&self.cache_dir.join(name), bytes);
        };
        match fetched {
            Fetched::NotFound => write(format!("{key}.meta"), br#"{"status":404}"#),
            Fetched::Body {
                body,
                total,
                partial,
            } => {
                write(format!("{key}.body"), body);
                let status = if *partial { 206 } else { 200 };
                write(
                    format!("{key}.meta"),
                    format!(r#"{{"status":{status},"total":{total}}}"#).as_bytes(),
                );
            }
        }
    }

    /// GET `url` (optionally a byte range), with retries on 5xx, 429 and
    /// network errors.
    pub async fn get(
        &self,
        url: &str,
        range: Option<&str>,
        accept: Option<&str>,
        policy: CachePolicy,
    ) -> Result<Fetched, String> {
        let key = Self::key(url, range);
        if policy != CachePolicy::Refresh
            && let Some(hit) = self.read_cache(&key)
        {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            if policy == CachePolicy::Page
                && let Ok(meta) = std::fs::metadata(self.cache_dir.join(format!("{key}.meta")))
                && let Ok(modified) = meta.modified()
                && let Ok(at) = modified.duration_since(std::time::UNIX_EPOCH)
            {
                self.stats
                    .oldest_cached_page
                    .fetch_min(at.as_secs(), Ordering::Relaxed);
            }
            return Ok(hit);
        }
        let _permit = self.semaphore.acquire().await.map_err(|e| e.to_string())?;
        let mut attempt = 0;
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self.client.get(url);
            if let Some(range) = range {
                request = request.header(reqwest::header::RANGE, range);
            }
            if let Some(accept) = accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let content_range = response
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.rsplit('/').next())
                        .and_then(|t| t.parse::<u64>().ok());
                    match status {
                        200 | 206 => match response.bytes().await {
                            Ok(body) => Ok(Fetched::Body {
                                total: if status == 206 {
                                    content_range.unwrap_or(body.len() as u64)
                                } else {
                                    body.len() as u64
                                },
                                partial: status == 206,
                                body: body.to_vec(),
                            }),
                            Err(e) => Err((true, format!("reading body of {url}: {e}"))),
                        },
                        404 | 410 => Ok(Fetched::NotFound),
                        429 | 500..=599 => Err((true, format!("{url}: HTTP {status}"))),
                        other => Err((false, format!("{url}: HTTP {other}"))),
                    }
                }
                Err(e) => Err((true, format!("{url}: {e}"))),
            };
            match outcome {
                Ok(fetched) => {
                    self.write_cache(&key, &fetched);
                    return Ok(fetched);
                }
                Err((retryable, message)) => {
                    if !retryable || attempt >= self.retries {
                        return Err(message);
                    }
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("retry {attempt} after: {message}");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                }
            }
        }
    }
}
