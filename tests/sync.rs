//! `snapshot sync --roots/--package` against a package index on loopback
//! (tests/common/index.rs) serving recorded, sanitised index responses —
//! and misbehaving on request: error pages with status 200, resets, 5xx
//! bursts, 429 with Retry-After, truncated and endless bodies, a gzip
//! bomb, stalls, redirect loops and redirects elsewhere, a wheel whose zip
//! directory lies, a page of 100,000 files. No other network is used.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use std::time::{Duration, Instant};

use common::index::{Fault, IndexServer, fixtures};
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::{KnowledgeBase, Lookup, Requires};

/// `thoth-rs snapshot sync` against `server`, in `dir` (its own user
/// knowledge base there), writing `snap.sqlite`.
fn sync(server: &IndexServer, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = common::thoth();
    cmd.env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", dir.join("kb.sqlite"))
        .env("THOTH_HTTP_TIMEOUT", "2")
        .env("THOTH_HTTP_BACKOFF_MS", "20")
        .env("CI", "1")
        .arg("-C")
        .arg(dir)
        .args(["snapshot", "sync", "--json", "-o", "snap.sqlite"])
        .args(["--index-url", &server.url("/simple/")])
        .args(args);
    cmd
}

/// Run `cmd`, sampling its peak resident memory (`VmHWM`) until it exits.
fn run_measured(mut cmd: Command) -> (Output, u64) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    // Read the pipes on threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).unwrap();
        b
    });
    let err_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).unwrap();
        b
    });
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
            && let Some(kb) = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    };
    (output, peak)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What a snapshot says, independent of when it was made: every project
/// with each release, its files, and what is known of its metadata.
fn content(path: &Path) -> String {
    let kb = SqliteKb::open(path).unwrap();
    let names: Vec<String> = kb
        .with_connection(|c| {
            let mut stmt = c.prepare("SELECT name FROM projects ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .unwrap();
    let mut out = String::new();
    for name in names {
        match kb.project(&name).unwrap() {
            Lookup::Found(record) => {
                for r in &record.releases {
                    let files: Vec<String> = kb
                        .files(&name, &r.version)
                        .unwrap()
                        .into_iter()
                        .map(|d| format!("{} {}", d.filename, d.sha256.unwrap_or_default()))
                        .collect();
                    let meta = match &r.dependencies {
                        Requires::Known(deps) => {
                            let d: Vec<String> = deps
                                .iter()
                                .map(|d| format!("{}{}", d.name, d.specifier))
                                .collect();
                            format!("deps [{}]", d.join(", "))
                        }
                        Requires::Unavailable(why) => format!("unavailable: {why}"),
                        Requires::NotFetched => "not fetched".into(),
                    };
                    out.push_str(&format!(
                        "{name} {} yanked={} files={files:?} {meta}\n",
                        r.version, r.yanked
                    ));
                }
            }
            other => out.push_str(&format!("{name}: {other:?}\n")),
        }
    }
    out
}

/// A project the bundled snapshot does not know: one wheel, listed with a
/// PEP 658 metadata file, the wheel itself not on the index.
fn add_fresh(server: &IndexServer) {
    server.add(
        "/simple/fresh/",
        serde_json::json!({
            "meta": {"api-version": "1.1"},
            "name": "fresh",
            "files": [{
                "filename": "fresh-1.0-py3-none-any.whl",
                "url": "../../files/fresh-1.0-py3-none-any.whl",
                "hashes": {"sha256": "00000000000000000000000000000000000000000000000000000000000000fe"},
                "core-metadata": {"sha256": "00"},
                "upload-time": "2024-01-01T00:00:00Z",
                "yanked": false,
            }],
        })
        .to_string(),
    );
    server.add(
        "/files/fresh-1.0-py3-none-any.whl.metadata",
        "Metadata-Version: 2.1\nName: fresh\nVersion: 1.0\nRequires-Dist: text-unidecode>=1.0\n\n",
    );
}

fn roots_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("roots.in"),
        "# roots in requirements syntax\n-r base.in\n-c constraints.txt\nsix<1.17 ; python_version >= '3'\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("base.in"), "python-slugify\nfresh\n").unwrap();
    std::fs::write(dir.path().join("constraints.txt"), "text-unidecode==1.3\n").unwrap();
    dir
}

#[test]
fn roots_in_requirements_syntax_give_their_closure_within_their_ranges() {
    let server = IndexServer::start();
    add_fresh(&server);
    let dir = roots_dir();
    let out = sync(&server, dir.path(), &["--roots", "roots.in"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"]["snapshot"]["projects"], 4, "{report}");
    let text = content(&dir.path().join("snap.sqlite"));
    // Every release of each project met is listed; a source-only release
    // is one of them, its dependencies read from the archive.
    assert!(
        text.contains("python-slugify 4.0.1 yanked=false files=[\"python-slugify-4.0.1.tar.gz")
            && text.contains("python-slugify 4.0.1")
            && text.lines().any(|l| l.starts_with("python-slugify 4.0.1")
                && l.contains("deps [text-unidecode>=1.3, unidecode>=1.1.1]")),
        "{text}"
    );
    // The root's range decides which releases get metadata: six<1.17.
    assert!(
        text.lines()
            .any(|l| l.starts_with("six 1.16.0") && l.contains("deps []")),
        "{text}"
    );
    // six 1.17.0 is listed but outside the range: its metadata is not asked
    // for (the bundled snapshot may know it by the file's digest).
    assert!(text.contains("six 1.17.0"), "{text}");
    assert!(
        !server.paths().iter().any(|p| p.contains("six-1.17.0")),
        "{:?}",
        server.paths()
    );
    assert_eq!(
        report["outcome"]["crawl"]["progress"]["metadata_wanted"], 5,
        "{report}"
    );
    // Dependencies gated by an extra nobody asked for are not followed.
    assert!(!text.contains("\nunidecode "), "{text}");
    assert!(text.contains("text-unidecode 1.3"), "{text}");
    let kb = SqliteKb::open(&dir.path().join("snap.sqlite")).unwrap();
    let roots = &kb.meta().roots;
    assert_eq!(roots.len(), 3, "{roots:?}");
    assert_eq!(roots[..2], ["python-slugify", "fresh"]);
    assert!(roots[2].starts_with("six<1.17"), "{roots:?}");
    let info = common::json_ok(common::thoth().arg("-C").arg(dir.path()).args([
        "snapshot",
        "info",
        "--snapshot",
        "snap.sqlite",
        "--json",
    ]));
    assert_eq!(info["projects"], 4);
    assert!(info["releases"].as_i64().unwrap() >= 5, "{info}");
    assert!(info["cutoff"].is_string());
}

/// One fault and what must follow from it.
struct Case {
    what: &'static str,
    path: &'static str,
    fault: Fault,
    times: usize,
    /// The sync still succeeds (the fault passes with retries).
    recovers: bool,
}

fn cases() -> Vec<Case> {
    let page = "/simple/six/";
    let meta = "/files/fresh-1.0-py3-none-any.whl.metadata";
    let html = |s: &str| s.as_bytes().to_vec();
    vec![
        Case {
            what: "a 200 \"502 Bad Gateway\" page",
            path: page,
            fault: Fault::Answer(
                "200 OK",
                "text/html",
                html("<html><body><h1>502 Bad Gateway</h1></body></html>"),
            ),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "an HTML error page served as a project page of JSON type",
            path: page,
            fault: Fault::Answer(
                "200 OK",
                "application/vnd.pypi.simple.v1+json",
                html("<html>oops</html>"),
            ),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "an HTML error page with status 200 for a .metadata file",
            path: meta,
            fault: Fault::Answer(
                "200 OK",
                "text/html",
                html("<html><body>Service Unavailable</body></html>"),
            ),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "metadata of another release",
            path: meta,
            fault: Fault::Answer(
                "200 OK",
                "text/plain",
                html("Metadata-Version: 2.1\nName: fresh\nVersion: 0.9\n\n"),
            ),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "two 429s with Retry-After",
            path: page,
            fault: Fault::TooMany(1),
            times: 2,
            recovers: true,
        },
        Case {
            what: "a burst of 503s",
            path: page,
            fault: Fault::Answer("503 Service Unavailable", "text/plain", html("busy")),
            times: 2,
            recovers: true,
        },
        Case {
            what: "503 for good",
            path: page,
            fault: Fault::Answer("503 Service Unavailable", "text/plain", html("busy")),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a reset connection",
            path: meta,
            fault: Fault::Reset,
            times: 1,
            recovers: true,
        },
        Case {
            what: "resets for good",
            path: page,
            fault: Fault::Reset,
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a truncated page",
            path: page,
            fault: Fault::Truncate,
            times: 1,
            recovers: true,
        },
        Case {
            what: "truncated metadata for good",
            path: meta,
            fault: Fault::Truncate,
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a stalled server",
            path: page,
            fault: Fault::Stall(30_000),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a redirect loop",
            path: page,
            fault: Fault::Redirect("/simple/six/".into()),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a redirect to a file: URL",
            path: page,
            fault: Fault::Redirect("file:///etc/passwd".into()),
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a redirect to another host name",
            path: page,
            fault: Fault::Redirect("http://localhost:{port}/simple/six/".into()),
            times: 1,
            recovers: true,
        },
        Case {
            what: "an endless page",
            path: page,
            fault: Fault::Endless,
            times: usize::MAX,
            recovers: false,
        },
        Case {
            what: "a gzip bomb for a metadata file",
            path: meta,
            fault: Fault::GzipBomb(40),
            times: usize::MAX,
            recovers: false,
        },
    ]
}

/// The reference: the index behaving, a clean sync of `roots_dir()`, and
/// what its snapshot says.
fn clean_sync() -> (IndexServer, tempfile::TempDir, String) {
    let server = IndexServer::start();
    add_fresh(&server);
    let clean = roots_dir();
    let out = sync(&server, clean.path(), &["--roots", "roots.in"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = content(&clean.path().join("snap.sqlite"));
    (server, clean, expected)
}

#[test]
fn a_hostile_index_never_crashes_sync_nor_spoils_the_snapshot_or_the_cache() {
    let (server, clean, expected) = clean_sync();
    let previous = std::fs::read(clean.path().join("snap.sqlite")).unwrap();

    for case in cases() {
        let dir = roots_dir();
        let target = dir.path().join("snap.sqlite");
        std::fs::write(&target, &previous).unwrap();
        server.heal();
        server.fault(case.path, case.fault.clone(), case.times);
        let started = Instant::now();
        let (out, peak) = run_measured(sync(&server, dir.path(), &["--roots", "roots.in"]));
        let took = started.elapsed();
        // Bodies are capped (an endless page stops at the 64 MiB page cap,
        // a gzip bomb at the 16 MiB metadata cap): memory stays bounded,
        // far below what reading them whole would take (GiBs).
        assert!(peak < 160 << 20, "{}: peak RSS {peak} bytes", case.what);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{}: {err}", case.what);
        assert!(
            took < Duration::from_secs(60),
            "{}: took {took:?}",
            case.what
        );
        if case.recovers {
            assert!(out.status.success(), "{}: {err}", case.what);
            assert_eq!(content(&target), expected, "{}", case.what);
        } else {
            assert_eq!(out.status.code(), Some(1), "{}: {err}", case.what);
            assert_eq!(
                std::fs::read(&target).unwrap(),
                previous,
                "{}: the old snapshot must stay as it was",
                case.what
            );
            assert!(err.contains("left as it was"), "{}: {err}", case.what);
        }
        // Nothing bad was kept: once the index behaves, the same command
        // gives the clean snapshot.
        server.heal();
        let again = sync(&server, dir.path(), &["--roots", "roots.in"])
            .output()
            .unwrap();
        assert!(again.status.success(), "{}: {}", case.what, stderr(&again));
        assert_eq!(content(&target), expected, "{} (after healing)", case.what);
        // No temporary file is left beside the snapshot.
        let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{}: {leftovers:?}", case.what);
    }
}

/// A wheel whose end-of-central-directory record points past the file.
fn lying_wheel() -> Vec<u8> {
    let mut wheel =
        std::fs::read(fixtures().join("files/six-1.16.0-py2.py3-none-any.whl")).unwrap();
    let eocd = wheel
        .windows(4)
        .rposition(|w| w == b"PK\x05\x06")
        .expect("an end-of-central-directory record");
    // Central directory size and offset: far beyond the file.
    wheel[eocd + 12..eocd + 16].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    wheel[eocd + 16..eocd + 20].copy_from_slice(&0x7fff_ff00u32.to_le_bytes());
    wheel
}

#[test]
fn a_wheel_whose_zip_directory_lies_is_unreadable_not_a_crash() {
    let server = IndexServer::start();
    add_fresh(&server);
    let dir = roots_dir();
    server.add("/files/liar-1.0-py3-none-any.whl", lying_wheel());
    server.add(
        "/simple/liar/",
        common::index::page(
            "liar",
            &[(
                "liar-1.0-py3-none-any.whl",
                "0000000000000000000000000000000000000000000000000000000000000001",
                "2024-01-01T00:00:00Z",
            )],
        ),
    );
    let out = sync(&server, dir.path(), &["--package", "liar"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    let text = content(&dir.path().join("snap.sqlite"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("liar 1.0") && l.contains("unavailable")),
        "{text}\n{err}"
    );
}

#[test]
fn a_page_of_a_hundred_thousand_files_is_read_within_bounds() {
    let server = IndexServer::start();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<serde_json::Value> = (0..100_000)
        .map(|i| {
            serde_json::json!({
                "filename": format!("many-1.{i}.tar.gz"),
                "url": format!("../../files/many-1.{i}.tar.gz"),
                "hashes": {"sha256": format!("{i:064x}")},
                "upload-time": "2024-01-01T00:00:00Z",
                "yanked": false,
            })
        })
        .collect();
    let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": "many", "files": files});
    server.add("/simple/many/", page.to_string());
    for v in ["1.99999", "1.99998"] {
        let pkg_info =
            format!("Metadata-Version: 2.2\nName: many\nVersion: {v}\nRequires-Dist: six\n\n");
        server.add(
            &format!("/files/many-{v}.tar.gz"),
            common::index::sdist(&[(&format!("many-{v}/PKG-INFO"), pkg_info.as_str())]),
        );
    }
    let out = sync(
        &server,
        dir.path(),
        &["--package", "many", "--max-versions", "2"],
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["outcome"]["crawl"]["progress"]["metadata_wanted"], 4,
        "the two newest of many and of six: {report}"
    );
    let snap = SqliteKb::open(&dir.path().join("snap.sqlite")).unwrap();
    let Lookup::Found(many) = snap.project("many").unwrap() else {
        panic!("many missing")
    };
    assert_eq!(many.releases.len(), 100_000);
    assert_eq!(
        many.releases
            .iter()
            .filter(|r| matches!(r.dependencies, Requires::Known(_)))
            .count(),
        2
    );
}

#[test]
fn a_killed_sync_resumes_to_the_same_snapshot() {
    let (server, _clean, expected) = clean_sync();

    let dir = roots_dir();
    let target = dir.path().join("snap.sqlite");
    std::fs::write(&target, b"the previous snapshot").unwrap();
    server.clear_log();
    server.delay(400);
    let mut child = sync(&server, dir.path(), &["--roots", "roots.in"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.log().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        b"the previous snapshot",
        "a killed sync must not touch the old snapshot"
    );
    let first = server.paths();
    assert!(!first.is_empty());

    server.delay(0);
    server.clear_log();
    let out = sync(&server, dir.path(), &["--roots", "roots.in"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(content(&target), expected);
}
