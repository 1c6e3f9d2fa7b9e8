//! A package index on loopback for tests: serves recorded, sanitised index
//! responses (tests/fixtures/live-index: PEP 691 project pages with
//! relative file URLs, PEP 658 metadata files, real source archives and a
//! wheel) plus whatever a test adds, with byte ranges, ETags, a chosen
//! Cache-Control, optional basic authentication, an optional delay, and a
//! log of every request in arrival order. No other network is used.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path.
    pub path: String,
    /// `Range` header.
    pub range: Option<String>,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// Status answered.
    pub status: u16,
}

/// A misbehaviour the server can show for one path.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status line, content type and body instead.
    Answer(&'static str, &'static str, Vec<u8>),
    /// 429 with `Retry-After: SECONDS`.
    TooMany(u64),
    /// Close the connection without a word.
    Reset,
    /// Announce twice the body's length, send half of it, close.
    Truncate,
    /// Send the head, then nothing for this many milliseconds.
    Stall(u64),
    /// 302 to this location (`{port}` is replaced by the server's port).
    Redirect(String),
    /// 200 with no length, zeros until the client hangs up (at most 4 GiB).
    Endless,
    /// 200 with `Content-Encoding: gzip`: a small body that expands to
    /// this many MiB.
    GzipBomb(usize),
}

#[derive(Default)]
struct State {
    /// Faults by path, with how many more requests they apply to.
    faults: Mutex<BTreeMap<String, (Fault, usize)>>,
    log: Mutex<Vec<Seen>>,
    /// Extra files by URL path (tests add pages and archives).
    extra: Mutex<BTreeMap<String, Vec<u8>>>,
    cache_control: Mutex<Option<String>>,
    /// (path prefix, "Basic …" expected).
    auth: Mutex<Option<(String, String)>>,
    delay_ms: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    stop: AtomicBool,
}

/// The running server; stops when dropped.
pub struct IndexServer {
    port: u16,
    state: Arc<State>,
}

impl Drop for IndexServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The recorded fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/live-index")
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn etag(body: &[u8]) -> String {
    // FNV-1a: enough to tell versions of a fixture apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

impl IndexServer {
    /// Start on an ephemeral loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || handle(stream, &s));
            }
        });
        Self { port, state }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve `body` at `path` (overrides the fixtures).
    pub fn add(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.state
            .extra
            .lock()
            .unwrap()
            .insert(path.to_string(), body.into());
    }

    /// Send this Cache-Control with every page.
    pub fn cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_string);
    }

    /// Require these credentials for paths under `prefix`.
    pub fn require_auth(&self, prefix: &str, user: &str, password: &str) {
        *self.state.auth.lock().unwrap() = Some((
            prefix.to_string(),
            format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
        ));
    }

    /// Misbehave on `path` for the next `times` requests (`usize::MAX`:
    /// always).
    pub fn fault(&self, path: &str, fault: Fault, times: usize) {
        self.state
            .faults
            .lock()
            .unwrap()
            .insert(path.to_string(), (fault, times));
    }

    /// Behave again on every path.
    pub fn heal(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    /// Wait this long before answering each request.
    pub fn delay(&self, ms: u64) {
        self.state.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<Seen> {
        self.state.log.lock().unwrap().clone()
    }

    /// Paths requested so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|s| s.path).collect()
    }

    /// Forget the log.
    pub fn clear_log(&self) {
        self.state.log.lock().unwrap().clear();
        self.state.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn lookup(state: &State, path: &str) -> Option<Vec<u8>> {
    if let Some(b) = state.extra.lock().unwrap().get(path) {
        return Some(b.clone());
    }
    let root = fixtures();
    let rel = path.trim_start_matches('/');
    if rel.contains("..") {
        return None;
    }
    if let Some(name) = rel.strip_prefix("simple/") {
        let file = root
            .join("simple")
            .join(name.trim_end_matches('/'))
            .join("index.json");
        return std::fs::read(file).ok();
    }
    if let Some(file) = rel.strip_prefix("files/") {
        return std::fs::read(root.join("files").join(file)).ok();
    }
    None
}

fn handle(mut stream: TcpStream, state: &State) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    // A connection closed before it sent a request (one a client opened and
    // then did not need) is not a request.
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst)));
    let mut seen = Seen {
        path: path.clone(),
        range: headers.get("range").cloned(),
        authorization: headers.get("authorization").cloned(),
        if_none_match: headers.get("if-none-match").cloned(),
        status: 200,
    };
    let fault = {
        let mut faults = state.faults.lock().unwrap();
        match faults.get_mut(&path) {
            Some((fault, left)) if *left > 0 => {
                *left = left.saturating_sub(1);
                Some(fault.clone())
            }
            _ => None,
        }
    };
    if let Some(fault) = fault {
        seen.status = 0;
        state.log.lock().unwrap().push(seen);
        state.in_flight.fetch_sub(1, Ordering::SeqCst);
        misbehave(&mut stream, state, &path, fault);
        return;
    }
    let auth = state.auth.lock().unwrap().clone();
    let (status, line, headers, body) = answer(state, &path, &seen, auth);
    seen.status = status;
    // Logged before answering, so a client that has its answer finds the
    // request in the log.
    state.log.lock().unwrap().push(seen);
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    respond(&mut stream, line, &headers, &body);
}

fn misbehave(stream: &mut TcpStream, state: &State, path: &str, fault: Fault) {
    let port = stream.local_addr().map(|a| a.port()).unwrap_or(0);
    match fault {
        Fault::Answer(line, content_type, body) => {
            respond(
                stream,
                line,
                &[("Content-Type", content_type.into())],
                &body,
            );
        }
        Fault::TooMany(secs) => respond(
            stream,
            "429 Too Many Requests",
            &[("Retry-After", secs.to_string())],
            b"slow down",
        ),
        Fault::Reset => {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Fault::Truncate => {
            let body = lookup(state, path).unwrap_or_else(|| vec![b'x'; 1000]);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() * 2
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body[..body.len() / 2]);
        }
        Fault::Stall(ms) => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n");
            std::thread::sleep(Duration::from_millis(ms));
        }
        Fault::Redirect(to) => respond(
            stream,
            "302 Found",
            &[("Location", to.replace("{port}", &port.to_string()))],
            b"",
        ),
        Fault::Endless => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.pypi.simple.v1+json\r\nConnection: close\r\n\r\n",
            );
            let chunk = vec![b' '; 1 << 16];
            for _ in 0..(1 << 16) {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        Fault::GzipBomb(mib) => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![b' '; 1 << 20];
            for _ in 0..mib {
                gz.write_all(&zeros).unwrap();
            }
            let body = gz.finish().unwrap();
            respond(
                stream,
                "200 OK",
                &[
                    ("Content-Type", "application/vnd.pypi.simple.v1+json".into()),
                    ("Content-Encoding", "gzip".into()),
                ],
                &body,
            );
        }
    }
}

type Answer = (u16, &'static str, Vec<(&'static str, String)>, Vec<u8>);

fn answer(state: &State, path: &str, seen: &Seen, auth: Option<(String, String)>) -> Answer {
    if let Some((_, expected)) = auth.filter(|(p, _)| path.starts_with(p.as_str()))
        && seen.authorization.as_deref() != Some(expected.as_str())
    {
        return (
            401,
            "401 Unauthorized",
            vec![("WWW-Authenticate", "Basic realm=\"test\"".into())],
            Vec::new(),
        );
    }
    let Some(body) = lookup(state, path) else {
        return (404, "404 Not Found", Vec::new(), Vec::new());
    };
    let is_page = path.contains("/simple/");
    let tag = etag(&body);
    let mut h: Vec<(&str, String)> = Vec::new();
    if is_page {
        h.push(("Content-Type", "application/vnd.pypi.simple.v1+json".into()));
        h.push(("ETag", tag.clone()));
        if let Some(cc) = state.cache_control.lock().unwrap().clone() {
            h.push(("Cache-Control", cc));
        }
    }
    if is_page && seen.if_none_match.as_deref() == Some(tag.as_str()) {
        return (304, "304 Not Modified", h, Vec::new());
    }
    let Some(range) = seen.range.as_deref().and_then(|r| r.strip_prefix("bytes=")) else {
        return (200, "200 OK", h, body);
    };
    let len = body.len();
    let (start, end) = match range.split_once('-') {
        Some(("", n)) => {
            let n: usize = n.parse().unwrap_or(0);
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        Some((a, "")) => (a.parse().unwrap_or(0), len.saturating_sub(1)),
        Some((a, b)) => (
            a.parse().unwrap_or(0),
            b.parse::<usize>().unwrap_or(0).min(len.saturating_sub(1)),
        ),
        None => (0, len.saturating_sub(1)),
    };
    if start > end || start >= len {
        return (416, "416 Range Not Satisfiable", Vec::new(), Vec::new());
    }
    h.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
    (206, "206 Partial Content", h, body[start..=end].to_vec())
}

/// A PEP 691 page for `name` listing `files` (file name, sha256, upload
/// time), with URLs relative to the page.
pub fn page(name: &str, files: &[(&str, &str, &str)]) -> String {
    let files: Vec<serde_json::Value> = files
        .iter()
        .map(|(filename, sha, time)| {
            serde_json::json!({
                "filename": filename,
                "url": format!("../../files/{filename}"),
                "hashes": {"sha256": sha},
                "requires-python": null,
                "upload-time": time,
                "yanked": false,
            })
        })
        .collect();
    serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files}).to_string()
}

/// A `.tar.gz` source archive holding `files` (path, content).
pub fn sdist(files: &[(&str, &str)]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, content.as_bytes())
                .unwrap();
        }
        tar.finish().unwrap();
    }
    gz.finish().unwrap()
}
