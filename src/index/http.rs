//! The HTTP client every index request goes through: bounded bodies read
//! chunk by chunk (a body over its cap is abandoned, never held whole),
//! timeouts on connecting and on every read, retries with backoff on
//! network errors, 429 and 5xx (honouring `Retry-After` up to a limit),
//! conditional requests, and credentials added per realm.
//!
//! Caps (decompressed bytes): project pages [`PAGE_CAP`], core metadata
//! files [`METADATA_CAP`], byte ranges of archives [`RANGE_CAP`]; source
//! archives are streamed up to [`crate::index::sdist::SDIST_CAP`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Credentials, redact};

/// Largest project page read (64 MiB).
pub const PAGE_CAP: u64 = 64 << 20;
/// Largest core metadata file read (16 MiB).
pub const METADATA_CAP: u64 = 16 << 20;
/// Largest byte range read from an archive (8 MiB).
pub const RANGE_CAP: u64 = 8 << 20;
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Counters of one run's network use.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Requests sent (retries included).
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes: AtomicU64,
    /// Retries after a failure.
    pub retries: AtomicU64,
    /// 304 answers to conditional requests.
    pub not_modified: AtomicU64,
    /// Requests under way now.
    pub in_flight: AtomicU64,
}

/// Caching facts of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHeaders {
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
    /// `Cache-Control: max-age` in seconds (`Some(0)` for `no-cache` or
    /// `no-store`); `None` when the server said nothing.
    pub max_age: Option<u64>,
}

/// A response worth acting on.
#[derive(Debug)]
pub enum Reply {
    /// 200 or 206.
    Body {
        /// The body, at most the request's cap.
        bytes: Vec<u8>,
        /// 206: the range was honoured.
        partial: bool,
        /// Total size of the resource (from `Content-Range`, else the body).
        total: u64,
        /// `Content-Type`.
        content_type: Option<String>,
        /// Caching headers.
        cache: CacheHeaders,
    },
    /// 304 to a conditional request.
    NotModified(CacheHeaders),
    /// 404 or 410.
    NotFound,
}

/// Why a request failed after its retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// An answer that retrying does not change (401, 403, other 4xx).
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        /// URL (without credentials).
        url: String,
        /// Status code.
        status: u16,
        /// A hint for people.
        hint: &'static str,
    },
    /// Network failure, timeout or repeated 5xx/429.
    #[error("{url}: {message}")]
    Network {
        /// URL (without credentials).
        url: String,
        /// What happened.
        message: String,
    },
    /// The body is larger than the cap.
    #[error("{url}: the response is larger than {cap} bytes; it was abandoned")]
    TooLarge {
        /// URL (without credentials).
        url: String,
        /// The cap.
        cap: u64,
    },
}

/// How urgently a request is wanted; shared by all requests of one job so
/// that raising it (the search now waits for that job) reorders requests
/// still queued.
#[derive(Debug, Clone, Default)]
pub struct Priority(Arc<AtomicU8>);

impl Priority {
    /// The search is blocked on it.
    pub const URGENT: u8 = 3;
    /// The search said it may need it soon.
    pub const HINT: u8 = 2;
    /// Guessed ahead of the search.
    pub const GUESS: u8 = 1;

    /// A priority at `level`.
    pub fn new(level: u8) -> Self {
        Self(Arc::new(AtomicU8::new(level)))
    }

    /// Current level.
    pub fn level(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    /// Raise to at least `level`.
    pub fn raise(&self, level: u8) {
        self.0.fetch_max(level, Ordering::Relaxed);
    }
}

struct Waiter {
    priority: Priority,
    seq: u64,
    wake: tokio::sync::oneshot::Sender<()>,
}

/// Admission of requests: at most `limit` in flight; a freed place goes to
/// the waiting request of highest priority (oldest first among equals).
pub struct Gate {
    state: std::sync::Mutex<(usize, u64, Vec<Waiter>)>,
}

/// A place in the gate, given back on drop.
pub struct Permit<'g>(&'g Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Gate {
    /// A gate admitting `limit` requests at once.
    pub fn new(limit: usize) -> Self {
        Self {
            state: std::sync::Mutex::new((limit.max(1), 0, Vec::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, u64, Vec<Waiter>)> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wait for a place.
    pub async fn enter(&self, priority: &Priority) -> Permit<'_> {
        let rx = {
            let mut state = self.lock();
            if state.0 > 0 {
                state.0 -= 1;
                return Permit(self);
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            state.1 += 1;
            let seq = state.1;
            state.2.push(Waiter {
                priority: priority.clone(),
                seq,
                wake: tx,
            });
            rx
        };
        match rx.await {
            Ok(()) => Permit(self),
            // The gate went away with the runtime; nothing is admitted any more.
            Err(_) => std::future::pending().await,
        }
    }

    fn release(&self) {
        let mut state = self.lock();
        loop {
            let best = state
                .2
                .iter()
                .enumerate()
                .max_by_key(|(_, w)| (w.priority.level(), std::cmp::Reverse(w.seq)))
                .map(|(i, _)| i);
            let Some(i) = best else {
                state.0 += 1;
                return;
            };
            let waiter = state.2.swap_remove(i);
            // A waiter whose task was dropped gives its turn to the next.
            if waiter.wake.send(()).is_ok() {
                return;
            }
        }
    }
}

/// One GET.
#[derive(Debug, Clone, Default)]
pub struct Get<'a> {
    /// URL (may carry no credentials; they are added per realm).
    pub url: &'a str,
    /// `Range` header value.
    pub range: Option<String>,
    /// `Accept` header value.
    pub accept: Option<&'a str>,
    /// `If-None-Match`.
    pub etag: Option<&'a str>,
    /// `If-Modified-Since`.
    pub last_modified: Option<&'a str>,
    /// Largest body accepted.
    pub cap: u64,
    /// Admission priority.
    pub priority: Priority,
}

/// The client (cheap to clone).
#[derive(Clone)]
pub struct Client {
    gate: Arc<Gate>,
    http: reqwest::Client,
    insecure: reqwest::Client,
    insecure_realms: Arc<Vec<String>>,
    credentials: Arc<Credentials>,
    /// Counters.
    pub stats: Arc<NetStats>,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// Timeouts and retries of a [`Client`].
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Connecting.
    pub connect_timeout: Duration,
    /// Between two reads of a response (a stalled server).
    pub read_timeout: Duration,
    /// One whole response, body included (a server that trickles).
    pub total_timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// Requests in flight at most.
    pub jobs: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            jobs: 16,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(300),
            retries: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

impl ClientOptions {
    /// The defaults with `jobs` in flight, adjusted by the environment:
    /// `THOTH_HTTP_TIMEOUT` (seconds a read may stall; connecting gets half,
    /// one whole response ten times as much), `THOTH_HTTP_RETRIES` and
    /// `THOTH_HTTP_BACKOFF_MS` (the first retry delay, doubled each time).
    pub fn from_env(jobs: usize) -> Self {
        let mut o = Self {
            jobs,
            ..Self::default()
        };
        let number = |key: &str| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0 && *v < 86_400.0)
        };
        if let Some(secs) = number("THOTH_HTTP_TIMEOUT").filter(|s| *s > 0.0) {
            o.read_timeout = Duration::from_secs_f64(secs);
            o.connect_timeout = Duration::from_secs_f64((secs / 2.0).max(0.1));
            o.total_timeout = Duration::from_secs_f64(secs * 10.0);
        }
        if let Some(n) = number("THOTH_HTTP_RETRIES") {
            o.retries = (n as u32).min(10);
        }
        if let Some(ms) = number("THOTH_HTTP_BACKOFF_MS") {
            o.backoff = Duration::from_secs_f64(ms / 1000.0);
        }
        o
    }
}

/// Redirects: at most ten, only to http or https, never from https down
/// to plain http (credentials are not sent to another host: the client
/// drops them when the host changes).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 10 {
            return attempt.error("more than 10 redirects");
        }
        let scheme = attempt.url().scheme();
        if scheme != "http" && scheme != "https" {
            let message = format!("a redirect to a {scheme}: URL is not followed");
            return attempt.error(message);
        }
        if scheme == "http"
            && attempt
                .previous()
                .last()
                .is_some_and(|u| u.scheme() == "https")
        {
            return attempt.error("a redirect from https to plain http is not followed");
        }
        if attempt.previous().iter().any(|u| u == attempt.url()) {
            return attempt.error("redirect loop");
        }
        attempt.follow()
    })
}

fn build(options: &ClientOptions, insecure: bool) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("thoth-rs/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .timeout(options.total_timeout)
        .redirect(redirect_policy())
        .pool_max_idle_per_host(32)
        .tls_danger_accept_invalid_certs(insecure)
        .build()
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `max-age` (or 0 for `no-cache`/`no-store`) of a `Cache-Control` value.
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut out = None;
    for directive in cache_control.split(',') {
        let d = directive.trim().to_ascii_lowercase();
        if d == "no-cache" || d == "no-store" {
            return Some(0);
        }
        if let Some(v) = d.strip_prefix("max-age=") {
            out = v.trim_matches('"').parse().ok();
        }
    }
    out
}

/// Seconds of a `Retry-After` value given in seconds (HTTP dates are not
/// honoured; the backoff applies instead).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    header(response, reqwest::header::RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

impl Client {
    /// A client with `credentials`; realms in `insecure_realms` skip TLS
    /// certificate verification (Pipfile `verify_ssl = false`).
    pub fn new(
        credentials: Credentials,
        insecure_realms: Vec<String>,
        options: ClientOptions,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            gate: Arc::new(Gate::new(options.jobs)),
            http: build(&options, false)?,
            insecure: build(&options, true)?,
            insecure_realms: Arc::new(insecure_realms),
            credentials: Arc::new(credentials),
            stats: Arc::new(NetStats::default()),
            retries: options.retries,
            backoff: options.backoff,
        })
    }

    fn client_for(&self, url: &str) -> &reqwest::Client {
        let realm = super::realm_of(url).unwrap_or_default();
        if self.insecure_realms.contains(&realm) {
            &self.insecure
        } else {
            &self.http
        }
    }

    /// Send one GET and return the response head with its place in the
    /// gate (hold it while reading the body), with retries. 404/410 come
    /// back as `Ok(None)`.
    pub async fn open(
        &self,
        get: &Get<'_>,
    ) -> Result<Option<(reqwest::Response, Permit<'_>)>, HttpError> {
        let shown = redact(get.url);
        let mut attempt = 0u32;
        loop {
            let permit = self.gate.enter(&get.priority).await;
            let mut request = self.client_for(get.url).get(get.url);
            if let Some((user, password)) = self.credentials.for_url(get.url) {
                request = request.basic_auth(user, Some(password));
            }
            if let Some(range) = &get.range {
                request = request.header(reqwest::header::RANGE, range);
            }
            if let Some(accept) = get.accept {
                request = request.header(reqwest::header::ACCEPT, accept);
            }
            if let Some(etag) = get.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(date) = get.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, date);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let (retry, message, wait) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200..=299 | 304 => return Ok(Some((response, permit))),
                        404 | 410 => return Ok(None),
                        401 | 403 => {
                            return Err(HttpError::Status {
                                url: shown,
                                status,
                                hint: " (check the credentials in the index URL or ~/.netrc)",
                            });
                        }
                        429 | 500..=599 => {
                            let wait = retry_after(&response);
                            (true, format!("HTTP {status}"), wait)
                        }
                        _ => {
                            return Err(HttpError::Status {
                                url: shown,
                                status,
                                hint: "",
                            });
                        }
                    }
                }
                Err(e) => (true, redact(&error_chain(&e)), None),
            };
            if !retry || attempt >= self.retries {
                return Err(HttpError::Network {
                    url: shown,
                    message: if attempt > 0 {
                        format!("{message} (after {} attempts)", attempt + 1)
                    } else {
                        message
                    },
                });
            }
            drop(permit);
            attempt += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let delay = wait.unwrap_or(self.backoff * 2u32.pow(attempt - 1));
            tracing::debug!("retry {attempt} of {shown} in {delay:?}: {message}");
            tokio::time::sleep(delay).await;
        }
    }

    /// GET `get.url` and read the body up to `get.cap`.
    pub async fn get(&self, get: &Get<'_>) -> Result<Reply, HttpError> {
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let out = self.get_inner(get).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if tracing::enabled!(tracing::Level::DEBUG) {
            let what = match &out {
                Ok(Reply::Body { bytes, partial, .. }) => {
                    format!("{} {} bytes", if *partial { 206 } else { 200 }, bytes.len())
                }
                Ok(Reply::NotModified(_)) => "304".into(),
                Ok(Reply::NotFound) => "404".into(),
                Err(e) => e.to_string(),
            };
            tracing::debug!(
                "GET {}{} -> {what} in {} ms",
                redact(get.url),
                get.range
                    .as_deref()
                    .map(|r| format!(" [{r}]"))
                    .unwrap_or_default(),
                started.elapsed().as_millis()
            );
        }
        out
    }

    async fn get_inner(&self, get: &Get<'_>) -> Result<Reply, HttpError> {
        let mut attempt = 0u32;
        loop {
            let Some((mut response, _permit)) = self.open(get).await? else {
                return Ok(Reply::NotFound);
            };
            let cache = CacheHeaders {
                etag: header(&response, reqwest::header::ETAG),
                last_modified: header(&response, reqwest::header::LAST_MODIFIED),
                max_age: header(&response, reqwest::header::CACHE_CONTROL)
                    .as_deref()
                    .and_then(max_age),
            };
            let status = response.status().as_u16();
            if status == 304 {
                self.stats.not_modified.fetch_add(1, Ordering::Relaxed);
                return Ok(Reply::NotModified(cache));
            }
            let content_type = header(&response, reqwest::header::CONTENT_TYPE);
            let total_from_range =
                header(&response, reqwest::header::CONTENT_RANGE).and_then(|v| {
                    v.rsplit('/')
                        .next()
                        .and_then(|t| t.trim().parse::<u64>().ok())
                });
            if response
                .content_length()
                .is_some_and(|n| n > get.cap && status != 206)
            {
                return Err(HttpError::TooLarge {
                    url: redact(get.url),
                    cap: get.cap,
                });
            }
            match read_capped(&mut response, get.cap, &self.stats).await {
                Ok(bytes) => {
                    let partial = status == 206;
                    let total = if partial {
                        total_from_range.unwrap_or(bytes.len() as u64)
                    } else {
                        bytes.len() as u64
                    };
                    return Ok(Reply::Body {
                        bytes,
                        partial,
                        total,
                        content_type,
                        cache,
                    });
                }
                Err(ReadError::TooLarge) => {
                    return Err(HttpError::TooLarge {
                        url: redact(get.url),
                        cap: get.cap,
                    });
                }
                Err(ReadError::Network(message)) => {
                    if attempt >= self.retries {
                        return Err(HttpError::Network {
                            url: redact(get.url),
                            message: format!("reading the body: {message}"),
                        });
                    }
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt - 1)).await;
                }
            }
        }
    }
}

/// Why reading a body stopped.
pub enum ReadError {
    /// Over the cap.
    TooLarge,
    /// The connection failed or stalled.
    Network(String),
}

/// Read a response body chunk by chunk, abandoning it past `cap` bytes.
pub async fn read_capped(
    response: &mut reqwest::Response,
    cap: u64,
    stats: &NetStats,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity(
        response
            .content_length()
            .map_or(16 << 10, |n| n.min(cap) as usize),
    );
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if out.len() as u64 + chunk.len() as u64 > cap {
                    return Err(ReadError::TooLarge);
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(ReadError::Network(redact(&error_chain(&e)))),
        }
    }
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Time spent by the caller waiting for network answers.
#[derive(Debug, Default)]
pub struct Waited(AtomicU64);

impl Waited {
    /// Add the time since `since`.
    pub fn add(&self, since: Instant) {
        self.0
            .fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    /// Seconds waited.
    pub fn seconds(&self) -> f64 {
        self.0.load(Ordering::Relaxed) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("max-age=\"60\""), Some(60));
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("private"), None);
    }
}
