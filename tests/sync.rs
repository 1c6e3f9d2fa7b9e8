//! `snapshot sync` against a local HTTP server on loopback that serves
//! recorded index responses (tests/fixtures/index): a PEP 691 JSON page, a
//! PEP 503 HTML page, relative file URLs, PEP 658 metadata files, one wheel
//! without a metadata file (read through HTTP range requests), a 500 before
//! success, and no project JSON API (404). No other network is used.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::{KnowledgeBase, Lookup};
use thoth_rs::python::parse_version;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/index")
}

#[derive(Default)]
struct ServerState {
    hits: Mutex<HashMap<String, u64>>,
    total: AtomicU64,
    fail_once: Mutex<Vec<String>>,
    delay_ms: AtomicU64,
    stop: AtomicBool,
}

struct Server {
    port: u16,
    state: Arc<ServerState>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
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

fn handle(mut stream: TcpStream, state: &ServerState) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let key = match &range {
        Some(r) => format!("{path} [{r}]"),
        None => path.clone(),
    };
    *state.hits.lock().unwrap().entry(key).or_default() += 1;
    state.total.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(state.delay_ms.load(Ordering::SeqCst)));
    {
        let mut fail = state.fail_once.lock().unwrap();
        if let Some(i) = fail.iter().position(|p| *p == path) {
            fail.remove(i);
            respond(&mut stream, "500 Internal Server Error", &[], b"try again");
            return;
        }
    }
    let root = fixtures();
    if let Some(name) = path
        .strip_prefix("/simple/")
        .map(|p| p.trim_end_matches('/'))
    {
        let json = root.join("simple").join(name).join("index.json");
        let html = root.join("simple").join(name).join("index.html");
        if json.is_file() {
            respond(
                &mut stream,
                "200 OK",
                &[("Content-Type", "application/vnd.pypi.simple.v1+json".into())],
                &std::fs::read(json).unwrap(),
            );
        } else if html.is_file() {
            respond(
                &mut stream,
                "200 OK",
                &[("Content-Type", "text/html".into())],
                &std::fs::read(html).unwrap(),
            );
        } else {
            respond(&mut stream, "404 Not Found", &[], b"");
        }
        return;
    }
    if let Some(file) = path.strip_prefix("/files/") {
        let Ok(bytes) = std::fs::read(root.join("files").join(file)) else {
            respond(&mut stream, "404 Not Found", &[], b"");
            return;
        };
        if let Some(spec) = range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
            let total = bytes.len();
            let (start, end) = if let Some(suffix) = spec.strip_prefix('-') {
                (total.saturating_sub(suffix.parse().unwrap()), total - 1)
            } else {
                let (a, b) = spec.split_once('-').unwrap();
                (
                    a.parse().unwrap(),
                    b.parse::<usize>().unwrap().min(total - 1),
                )
            };
            respond(
                &mut stream,
                "206 Partial Content",
                &[("Content-Range", format!("bytes {start}-{end}/{total}"))],
                &bytes[start..=end],
            );
        } else {
            respond(&mut stream, "200 OK", &[], &bytes);
        }
        return;
    }
    respond(&mut stream, "404 Not Found", &[], b"");
}

fn start_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(ServerState::default());
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let state = shared.clone();
            std::thread::spawn(move || handle(stream, &state));
        }
    });
    Server { port, state }
}

fn sync_command(server: &Server, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thoth-rs"));
    cmd.arg("-C")
        .arg(dir)
        .args([
            "snapshot",
            "sync",
            "--package",
            "python-dateutil",
            "--max-versions",
            "5",
            "--jobs",
            "2",
            "--json",
            "-o",
            "kb.sqlite",
            "--cache-dir",
            "cache",
            "--index-url",
        ])
        .arg(format!("http://127.0.0.1:{}/simple/", server.port))
        .env("THOTH_SYNC_BACKOFF_MS", "20")
        .env("CI", "1")
        .env_remove("PIP_INDEX_URL");
    cmd
}

#[test]
fn sync_builds_a_closed_snapshot_from_recorded_responses() {
    let server = start_server();
    server
        .state
        .fail_once
        .lock()
        .unwrap()
        .push("/simple/python-dateutil/".into());
    let dir = tempfile::tempdir().unwrap();
    let out = sync_command(&server, dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["projects"], 2);
    assert_eq!(report["releases"], 4);
    assert_eq!(report["metadata_pep658"], 3);
    assert_eq!(
        report["metadata_range"], 1,
        "six 1.16.0 has no .metadata file"
    );
    assert_eq!(report["metadata_missing"], 0);
    assert!(
        report["retries"].as_u64().unwrap() >= 1,
        "the 500 must be retried"
    );
    assert_eq!(report["unavailable"], 0);

    let hits = server.state.hits.lock().unwrap().clone();
    assert!(
        hits.keys()
            .any(|k| k.starts_with("/files/six-1.16.0-py2.py3-none-any.whl [bytes=")),
        "{hits:?}"
    );
    assert_eq!(hits.get("/simple/python-dateutil/"), Some(&2));
    assert!(
        hits.contains_key("/pypi/python-dateutil/json"),
        "the JSON API is tried first"
    );

    let kb = SqliteKb::open(&dir.path().join("kb.sqlite")).unwrap();
    assert_eq!(kb.meta().roots, ["python-dateutil"]);
    assert_eq!(
        kb.meta().index_url.as_deref(),
        Some(format!("http://127.0.0.1:{}/simple/", server.port).as_str())
    );
    let Lookup::Found(dateutil) = kb.project("python-dateutil").unwrap() else {
        panic!("python-dateutil missing")
    };
    let versions: Vec<String> = dateutil
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["2.9.0.post0", "2.8.2"]);
    let newest = &dateutil.releases[0];
    let deps: Vec<&str> = newest
        .dependencies
        .known()
        .unwrap()
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(deps, ["six"]);
    assert_eq!(newest.distributions.len(), 2);
    assert!(
        newest.upload_time.is_some(),
        "upload times from the JSON page are kept"
    );

    let Lookup::Found(six) = kb.project("six").unwrap() else {
        panic!("six missing")
    };
    let old = six
        .releases
        .iter()
        .find(|r| r.version == parse_version("1.16.0").unwrap())
        .unwrap();
    assert_eq!(
        old.requires_python.as_deref(),
        Some(">=2.7, !=3.0.*, !=3.1.*, !=3.2.*"),
        "read from the wheel's METADATA"
    );
    assert!(old.dependencies.known().unwrap().is_empty());
    let hashes = kb.hashes("six", &parse_version("1.16.0").unwrap()).unwrap();
    assert!(
        hashes.contains(
            &"sha256:14694576d8241eb8da8bfbf9cd874f5b8ac6ca79c1dafa1ae19eeda15a80f001".to_string()
        ),
        "{hashes:?}"
    );

    let info = Command::new(env!("CARGO_BIN_EXE_thoth-rs"))
        .arg("-C")
        .arg(dir.path())
        .args(["snapshot", "info", "--snapshot", "kb.sqlite", "--json"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    for key in [
        "projects",
        "releases",
        "distributions",
        "dangling_dependencies",
        "advisories",
        "cutoff",
    ] {
        assert!(info.get(key).is_some(), "snapshot info --json lacks {key}");
    }
    assert_eq!(info["dangling_dependencies"], 0);
    assert_eq!(info["distributions"], 8);
}

#[test]
fn killed_sync_keeps_old_snapshot_and_resumes_from_cache() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("kb.sqlite");
    std::fs::write(&target, b"the previous snapshot").unwrap();

    server.state.delay_ms.store(600, Ordering::SeqCst);
    let mut child = sync_command(&server, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.state.total.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the in-flight responses land in the cache, then kill.
    std::thread::sleep(Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"the previous snapshot",
        "a killed sync must not touch the old snapshot"
    );
    let served_first: HashMap<String, u64> = server.state.hits.lock().unwrap().clone();
    assert!(!served_first.is_empty());

    server.state.delay_ms.store(0, Ordering::SeqCst);
    let out = sync_command(&server, dir.path()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["cache_hits"].as_u64().unwrap() >= 1,
        "the re-run must reuse what was fetched: {report}"
    );
    assert_eq!(report["projects"], 2);
    // Successful answers from the first run are not asked for again, except
    // the JSON API 404s and pages, which are cached too.
    let after = server.state.hits.lock().unwrap().clone();
    let refetched: Vec<&String> = served_first
        .keys()
        .filter(|k| k.starts_with("/files/") && after.get(*k) != served_first.get(*k))
        .collect();
    assert!(
        refetched.is_empty(),
        "refetched after resume: {refetched:?}"
    );
    let kb = SqliteKb::open(&target).unwrap();
    assert!(matches!(kb.project("six").unwrap(), Lookup::Found(_)));
    let mut buf = Vec::new();
    std::fs::File::open(&target)
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    assert!(buf.starts_with(b"SQLite format 3"));
}

#[test]
fn a_snapshot_built_from_cached_pages_claims_no_later_cutoff() {
    let server = start_server();
    let dir = tempfile::tempdir().unwrap();
    let first = sync_command(&server, dir.path())
        .args(["--exclude-newer", "2026-01-01"])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // Pretend every cached answer was fetched on 2020-06-01.
    let then = std::time::UNIX_EPOCH + Duration::from_secs(1_590_969_600);
    for entry in std::fs::read_dir(dir.path().join("cache")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
    let cutoff = |dir: &Path| {
        SqliteKb::open(&dir.join("kb.sqlite"))
            .unwrap()
            .meta()
            .cutoff
            .clone()
    };
    let again = sync_command(&server, dir.path())
        .args(["--exclude-newer", "2026-01-01"])
        .output()
        .unwrap();
    assert!(again.status.success());
    // The pages came from the cache: they know nothing after 2020-06-01.
    assert_eq!(cutoff(dir.path()).as_deref(), Some("2020-06-01T00:00:00Z"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --refresh"));
    // With --refresh the pages are fetched again and the cutoff asked for holds.
    let fresh = sync_command(&server, dir.path())
        .args(["--exclude-newer", "2026-01-01", "--refresh"])
        .output()
        .unwrap();
    assert!(fresh.status.success());
    assert_eq!(cutoff(dir.path()).as_deref(), Some("2026-01-01T00:00:00Z"));
}
