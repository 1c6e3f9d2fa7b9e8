//! The live knowledge base against a package index on loopback that serves
//! recorded, sanitised index responses (tests/common/index.rs). Nothing
//! here uses any other network.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::index::{IndexServer, page, sdist};
use common::thoth;
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::index::{IndexSettings, configure};
use thoth_rs::kb::layered::{LayeredKb, LiveOptions};
use thoth_rs::kb::{KnowledgeBase, Lookup, MetadataAnswer, PrefetchTarget, Wanted};
use thoth_rs::python::{parse_specifiers, parse_version};

/// A layered knowledge base over `server`'s `/simple/` only (no base
/// snapshot), its user knowledge base in `dir`.
fn live_kb(server: &IndexServer, dir: &Path, options: LiveOptions) -> LayeredKb {
    let indexes = configure(&IndexSettings {
        index_url: Some(server.url("/simple/")),
        ..IndexSettings::default()
    })
    .unwrap();
    LayeredKb::open(None, false, &dir.join("kb.sqlite"), indexes, options).unwrap()
}

fn target() -> Arc<PrefetchTarget> {
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    Arc::new(PrefetchTarget {
        query: thoth_rs::advise::candidate_query(&env, None).unwrap(),
        markers: env.marker_environment().unwrap(),
    })
}

fn found(kb: &LayeredKb, name: &str) -> Arc<thoth_rs::kb::ProjectRecord> {
    match kb.project(name).unwrap() {
        Lookup::Found(r) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn release_index(record: &thoth_rs::kb::ProjectRecord, version: &str) -> usize {
    let v = parse_version(version).unwrap();
    record.releases.iter().position(|r| r.version == v).unwrap()
}

fn known(answer: MetadataAnswer) -> Vec<String> {
    match answer {
        MetadataAnswer::Known(m) => m
            .dependencies
            .iter()
            .map(|d| match &d.extra {
                Some(e) => format!("{}{} [{e}]", d.name, d.specifier),
                None => format!("{}{}", d.name, d.specifier),
            })
            .collect(),
        MetadataAnswer::Unavailable(why) => panic!("unavailable: {why}"),
    }
}

#[test]
fn pages_and_metadata_are_fetched_only_when_asked() {
    let server = IndexServer::start();
    let dir = tempfile::tempdir().unwrap();
    let kb = live_kb(&server, dir.path(), LiveOptions::default());

    // A project's page is fetched the first time it is asked for, alone.
    let slugify = found(&kb, "python-slugify");
    assert_eq!(server.paths(), ["/simple/python-slugify/"]);
    // Every release on the page is known, the source-only one included,
    // and no metadata has been read yet.
    let versions: Vec<String> = slugify
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["8.0.4", "4.0.1"]);
    assert!(
        slugify
            .releases
            .iter()
            .all(|r| r.dependencies == thoth_rs::kb::Requires::NotFetched)
    );

    // One release's metadata: its wheel's PEP 658 file (the wheel's tail is
    // asked for at the same time, in case there is none).
    let deps = known(
        kb.metadata(&slugify, release_index(&slugify, "8.0.4"))
            .unwrap(),
    );
    assert_eq!(
        deps,
        ["text-unidecode>=1.3", "unidecode>=1.1.1 [unidecode]"]
    );
    let after: Vec<String> = server.paths()[1..].to_vec();
    assert!(
        after
            .iter()
            .all(|p| p.starts_with("/files/python_slugify-8.0.4-py2.py3-none-any.whl")),
        "{after:?}"
    );
    assert!(
        after.contains(&"/files/python_slugify-8.0.4-py2.py3-none-any.whl.metadata".to_string())
    );
    // Nothing about its dependencies was fetched: nobody asked.
    assert!(!server.paths().iter().any(|p| p.contains("text-unidecode")));

    // A source-only release: setuptools' egg-info/requires.txt in the archive.
    server.clear_log();
    let deps = known(
        kb.metadata(&slugify, release_index(&slugify, "4.0.1"))
            .unwrap(),
    );
    assert_eq!(
        deps,
        ["text-unidecode>=1.3", "unidecode>=1.1.1 [unidecode]"]
    );
    // (The 8.0.4 wheel's tail, asked for alongside its metadata file, may
    // still be on its way when the log was cleared.)
    let paths: Vec<String> = server
        .paths()
        .into_iter()
        .filter(|p| !p.starts_with("/files/python_slugify-8.0.4-py2.py3-none-any.whl"))
        .collect();
    assert_eq!(paths, ["/files/python-slugify-4.0.1.tar.gz"]);

    // Asked again, nothing is fetched: the answers are remembered.
    server.clear_log();
    let _ = kb.metadata(&slugify, 1).unwrap();
    let _ = kb.project("python-slugify").unwrap();
    assert!(server.paths().is_empty());
    kb.finish();

    // A new run finds everything in the user knowledge base.
    server.clear_log();
    let again = live_kb(&server, dir.path(), LiveOptions::default());
    let slugify = found(&again, "python-slugify");
    let deps = known(
        again
            .metadata(&slugify, release_index(&slugify, "4.0.1"))
            .unwrap(),
    );
    assert_eq!(
        deps,
        ["text-unidecode>=1.3", "unidecode>=1.1.1 [unidecode]"]
    );
    assert!(server.paths().is_empty(), "{:?}", server.paths());
}

#[test]
fn source_archives_are_read_without_building() {
    let server = IndexServer::start();
    let dir = tempfile::tempdir().unwrap();
    let kb = live_kb(&server, dir.path(), LiveOptions::default());
    let meta = |name: &str, version: &str| {
        let record = found(&kb, name);
        kb.metadata(&record, release_index(&record, version))
            .unwrap()
    };
    // PKG-INFO of Metadata-Version 2.4 and no setup.py: trusted as it is.
    // The recorded archive is only its first 8 KiB: reading stops once
    // PKG-INFO is read.
    match meta("psycopg-c", "3.3.9") {
        MetadataAnswer::Known(m) => {
            assert!(m.dependencies.is_empty());
            assert_eq!(m.requires_python.as_deref(), Some(">=3.10"));
        }
        other => panic!("{other:?}"),
    }
    // egg-info without requires.txt: no dependencies.
    assert!(known(meta("pyperclip", "1.9.0")).is_empty());
    // No PKG-INFO, no egg-info: setup.py's literal install_requires.
    assert!(known(meta("onetimepass", "0.1.2")).is_empty());
    kb.finish();
    let store = thoth_rs::kb::store::Store::open(&dir.path().join("kb.sqlite")).unwrap();
    let index: Arc<str> = Arc::from(server.url("/simple/").as_str());
    for (name, version, source) in [
        ("psycopg-c", "3.3.9", "sdist-pkg-info"),
        ("pyperclip", "1.9.0", "sdist-egg-info"),
        ("onetimepass", "0.1.2", "sdist-setup-py"),
    ] {
        match store
            .metadata(&index, name, &parse_version(version).unwrap())
            .unwrap()
        {
            Some(thoth_rs::kb::store::StoredMetadata::Known { source: s, .. }) => {
                assert_eq!(s, source, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn dynamic_metadata_is_unavailable_with_its_reason() {
    let server = IndexServer::start();
    // A source archive whose setup.py computes its requirements, and an
    // older release whose requirements are literal.
    let dynamic = sdist(&[
        (
            "dynthing-2.0/PKG-INFO",
            "Metadata-Version: 2.1\nName: dynthing\nVersion: 2.0\n\n",
        ),
        (
            "dynthing-2.0/setup.py",
            "from setuptools import setup\nsetup(name='dynthing', install_requires=open('reqs.txt').read().split())\n",
        ),
    ]);
    let literal = sdist(&[(
        "dynthing-1.0/setup.py",
        "from setuptools import setup\nsetup(name='dynthing', install_requires=['six>=1.16'])\n",
    )]);
    server.add("/files/dynthing-2.0.tar.gz", dynamic);
    server.add("/files/dynthing-1.0.tar.gz", literal);
    server.add(
        "/simple/dynthing/",
        page(
            "dynthing",
            &[
                (
                    "dynthing-1.0.tar.gz",
                    &"1".repeat(64),
                    "2020-01-01T00:00:00Z",
                ),
                (
                    "dynthing-2.0.tar.gz",
                    &"2".repeat(64),
                    "2021-01-01T00:00:00Z",
                ),
            ],
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "dynthing==2.0\n").unwrap();
    let run = |spec: &str| {
        std::fs::write(dir.path().join("requirements.in"), spec).unwrap();
        thoth()
            .env_remove("THOTH_OFFLINE")
            .env("THOTH_KB", dir.path().join("kb.sqlite"))
            .arg("-C")
            .arg(dir.path())
            .args(["advise", "-t", "latest", "--index-url"])
            .arg(server.url("/simple/"))
            .args(["--format", "requirements", "--json"])
            .output()
            .unwrap()
    };
    let out = run("dynthing==2.0\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dynthing 2.0: dependency metadata unavailable: it exists only as a source archive whose dependencies are dynamic: install_requires: the value is computed"),
        "{stderr}"
    );
    assert!(!stderr.contains("no version of dynthing satisfies every requirement on it:\n  required: dynthing==2.0 ← the project\n  dynthing 2.0: excluded"));
    // With room to choose, the older release is taken and the newer one's
    // reason is reported.
    let out = run("dynthing\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pkg = &report["products"][0]["packages"]["dynthing"];
    assert_eq!(pkg["version"], "1.0", "{pkg}");
    let why = pkg["newer_rejected"][0].to_string();
    assert!(why.contains("2.0") && why.contains("dynamic"), "{why}");
    assert!(
        report["products"][0]["packages"]
            .as_object()
            .unwrap()
            .contains_key("six")
    );
}

#[test]
fn prefetch_runs_ahead_of_the_search_in_parallel() {
    let server = IndexServer::start();
    server.delay(60);
    let dir = tempfile::tempdir().unwrap();
    let kb = live_kb(&server, dir.path(), LiveOptions::default());
    // The search has met python-slugify; nothing is asked yet.
    kb.prefetch(
        &target(),
        &[Wanted {
            name: "python-slugify".into(),
            spec: parse_specifiers(">=8").unwrap(),
            extras: Vec::new(),
        }],
    );
    // The crawl fetches its page, the metadata of the release a
    // newest-first search takes, and then the page and metadata of what it
    // requires, without anyone asking.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server
        .paths()
        .iter()
        .any(|p| p == "/files/text_unidecode-1.3-py2.py3-none-any.whl.metadata")
    {
        assert!(std::time::Instant::now() < deadline, "{:?}", server.paths());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let paths = server.paths();
    let position = |p: &str| paths.iter().position(|x| x == p).unwrap();
    assert!(position("/simple/python-slugify/") < position("/simple/text-unidecode/"));
    // The extra's dependency is not crawled: no extra was asked for.
    assert!(!paths.iter().any(|p| p.contains("/unidecode/")));
    // Requests overlapped (the wheel's metadata file and its tail at least).
    assert!(server.max_in_flight() >= 2, "{}", server.max_in_flight());
    // Let requests still in flight land (under load the wheel's tail can
    // be logged after its metadata file): the log stops growing.
    let mut seen = server.paths().len();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let now = server.paths().len();
        if now == seen || std::time::Instant::now() > deadline {
            break;
        }
        seen = now;
    }
    // When the search asks, the answers are there.
    server.clear_log();
    let slugify = found(&kb, "python-slugify");
    let _ = kb.metadata(&slugify, 0).unwrap();
    let unidecode = found(&kb, "text-unidecode");
    let _ = kb.metadata(&unidecode, 0).unwrap();
    assert!(server.paths().is_empty(), "{:?}", server.paths());
    kb.finish();
}

/// Run `advise` against the loopback index in `dir` with the user
/// knowledge base `kb`.
fn advise_live(dir: &Path, kb: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = thoth();
    cmd.env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", kb)
        .arg("-C")
        .arg(dir)
        .args(["advise", "-t", "latest", "--json"]);
    if !args.contains(&"--format") {
        cmd.args(["--format", "requirements"]);
    }
    cmd.args(args).output().unwrap()
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn two_processes_fill_one_user_kb_at_once() {
    let server = IndexServer::start();
    server.delay(20);
    let root = tempfile::tempdir().unwrap();
    let kb = root.path().join("shared-kb.sqlite");
    let index = server.url("/simple/");
    let a = root.path().join("a");
    let b = root.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("requirements.in"), "python-slugify==8.0.4\nsix\n").unwrap();
    std::fs::write(
        b.join("requirements.in"),
        "python-slugify==4.0.1\npyperclip\n",
    )
    .unwrap();
    let spawn = |dir: &PathBuf| {
        thoth()
            .env_remove("THOTH_OFFLINE")
            .env("THOTH_KB", &kb)
            .arg("-C")
            .arg(dir)
            .args([
                "advise",
                "-t",
                "latest",
                "--format",
                "requirements",
                "-o",
                "lock.txt",
                "--index-url",
            ])
            .arg(&index)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    for p in [pa, pb] {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Both runs' data is in the one file: each project resolves offline,
    // to the same lock.
    for dir in [&a, &b] {
        let before = std::fs::read_to_string(dir.join("lock.txt")).unwrap();
        let out = thoth()
            .env("THOTH_KB", &kb)
            .arg("-C")
            .arg(dir)
            .args([
                "advise",
                "-t",
                "latest",
                "--format",
                "requirements",
                "-o",
                "offline.txt",
                "--index-url",
            ])
            .arg(&index)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("offline.txt")).unwrap(),
            before
        );
    }
}

#[test]
fn offline_names_what_is_missing_and_how_to_get_it() {
    let server = IndexServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Neither is in the bundled snapshot (psycopg-c is recorded there as
    // "not synced").
    std::fs::write(
        dir.path().join("requirements.in"),
        "onetimepass\npsycopg-c\n",
    )
    .unwrap();
    let kb = dir.path().join("kb.sqlite");
    let out = thoth()
        .env("THOTH_KB", &kb)
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--offline", "--index-url"])
        .arg(server.url("/simple/"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("onetimepass: not in the knowledge base"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the knowledge base lacks 2 project(s): onetimepass, psycopg-c"),
        "{stderr}"
    );
    assert!(stderr.contains("run once without --offline"), "{stderr}");
    // Offline means no request at all.
    assert!(server.paths().is_empty());
    // The next step it suggests works as written (the index given as the
    // user would give it): build the snapshot, then resolve offline on it
    // with a new, empty user knowledge base.
    let suggested: Vec<Vec<String>> = stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("thoth-rs "))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(suggested.len(), 2, "{stderr}");
    let fresh_kb = dir.path().join("fresh-kb.sqlite");
    let sync = thoth()
        .env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", &fresh_kb)
        .arg("-C")
        .arg(dir.path())
        .args(&suggested[0])
        .arg("--index-url")
        .arg(server.url("/simple/"))
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let offline = thoth()
        .env("THOTH_KB", dir.path().join("other-kb.sqlite"))
        .arg("-C")
        .arg(dir.path())
        .args(&suggested[1])
        .args(["-o", "suggested.lock"])
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    server.clear_log();
    // Once fetched, the same run works offline.
    report(&advise_live(
        dir.path(),
        &kb,
        &["--index-url", &server.url("/simple/")],
    ));
    server.clear_log();
    let out = thoth()
        .env("THOTH_KB", &kb)
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--offline", "-t", "latest", "--index-url"])
        .arg(server.url("/simple/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.paths().is_empty());
}

#[test]
fn a_name_found_on_the_first_index_is_taken_only_from_it() {
    let server = IndexServer::start();
    // A second index offers a much newer python-slugify (a name squatted
    // there) and a project only it has.
    server.add(
        "/private/simple/python-slugify/",
        page(
            "python-slugify",
            &[(
                "python_slugify-99.0-py3-none-any.whl",
                &"9".repeat(64),
                "2026-01-01T00:00:00Z",
            )],
        ),
    );
    server.add(
        "/private/simple/internal-tool/",
        page(
            "internal-tool",
            &[(
                "internal_tool-1.0.tar.gz",
                &"a".repeat(64),
                "2026-01-01T00:00:00Z",
            )],
        ),
    );
    server.add(
        "/private/files/internal_tool-1.0.tar.gz",
        sdist(&[(
            "internal_tool-1.0/PKG-INFO",
            "Metadata-Version: 2.2\nName: internal-tool\nVersion: 1.0\nRequires-Dist: six\n\n",
        )]),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.in"),
        "python-slugify\ninternal-tool\n",
    )
    .unwrap();
    let kb = dir.path().join("kb.sqlite");
    let out = advise_live(
        dir.path(),
        &kb,
        &[
            "--index-url",
            &server.url("/simple/"),
            "--extra-index-url",
            &server.url("/private/simple/"),
            "--format",
            "pylock",
            "-o",
            "pylock.toml",
        ],
    );
    let report = report(&out);
    let packages = &report["products"][0]["packages"];
    assert_eq!(packages["python-slugify"]["version"], "8.0.4");
    assert_eq!(packages["internal-tool"]["version"], "1.0");
    assert!(
        !server
            .paths()
            .contains(&"/private/simple/python-slugify/".to_string()),
        "{:?}",
        server.paths()
    );
    // Each locked package records the index it came from.
    let lock = std::fs::read_to_string(dir.path().join("pylock.toml")).unwrap();
    let section = |name: &str| {
        let start = lock.find(&format!("name = \"{name}\"")).unwrap();
        lock[start..]
            .split("[[packages]]")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(
        section("internal-tool")
            .contains(&format!("index = \"{}\"", server.url("/private/simple"))),
        "{lock}"
    );
    assert!(
        section("python-slugify").contains(&format!("index = \"{}\"", server.url("/simple"))),
        "{lock}"
    );
}

#[test]
fn credentials_never_leave_the_request() {
    let server = IndexServer::start();
    server.require_auth("/", "alice", "s3cr3t-token");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.in"),
        "python-slugify==8.0.4\n",
    )
    .unwrap();
    let kb = dir.path().join("kb.sqlite");
    let secret_url = format!(
        "http://alice:s3cr3t-token@127.0.0.1:{}/simple/",
        server.port()
    );
    for format in ["requirements", "pipfile-lock", "pylock"] {
        let out = advise_live(
            dir.path(),
            &kb,
            &[
                "--index-url",
                &secret_url,
                "--format",
                format,
                "-o",
                "lock.out",
                "-v",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let lock = std::fs::read_to_string(dir.path().join("lock.out")).unwrap();
        for (what, text) in [("stdout", &*stdout), ("stderr", &*stderr), ("lock", &*lock)] {
            assert!(
                !text.contains("s3cr3t"),
                "{format}: the secret is in {what}"
            );
        }
    }
    // Every request carried the credentials (files live on the same host).
    let bare: Vec<_> = server
        .log()
        .into_iter()
        .filter(|s| s.authorization.is_none())
        .collect();
    assert!(bare.is_empty(), "{bare:?}");
    // The user knowledge base holds no secret either.
    let mut stored = std::fs::read(&kb).unwrap();
    for ext in ["-wal", "-shm"] {
        stored.extend(std::fs::read(format!("{}{ext}", kb.display())).unwrap_or_default());
    }
    assert!(!String::from_utf8_lossy(&stored).contains("s3cr3t"));

    // From ~/.netrc (NETRC) instead of the URL.
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login alice password s3cr3t-token\n",
    )
    .unwrap();
    let out = thoth()
        .env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", dir.path().join("kb2.sqlite"))
        .env("NETRC", &netrc)
        .arg("-C")
        .arg(dir.path())
        .args([
            "advise",
            "-t",
            "latest",
            "--format",
            "requirements",
            "-o",
            "lock2.txt",
            "--index-url",
        ])
        .arg(server.url("/simple/"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without any, the index's refusal is named.
    let out = thoth()
        .env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", dir.path().join("kb3.sqlite"))
        .env("NETRC", dir.path().join("none"))
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--index-url"])
        .arg(server.url("/simple/"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 401"));
}

#[test]
fn pages_are_refreshed_by_age() {
    let server = IndexServer::start();
    server.cache_control(Some("max-age=600"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.in"),
        "python-slugify==8.0.4\n",
    )
    .unwrap();
    let kb = dir.path().join("kb.sqlite");
    let index = server.url("/simple/");
    let pages = |s: &IndexServer| {
        s.log()
            .into_iter()
            .filter(|x| x.path.starts_with("/simple/"))
            .collect::<Vec<_>>()
    };
    let first = report(&advise_live(dir.path(), &kb, &["--index-url", &index]));
    assert_eq!(first["knowledge_base"]["pages"]["fetched"], 2);
    assert_eq!(pages(&server).len(), 2);
    // Within the index's max-age: no request at all, and the report says
    // how old the data is.
    server.clear_log();
    let second = report(&advise_live(dir.path(), &kb, &["--index-url", &index]));
    assert!(server.log().is_empty(), "{:?}", server.paths());
    assert_eq!(second["knowledge_base"]["pages"]["from_user_kb"], 2);
    assert!(
        second["knowledge_base"]["oldest_data_seconds"]
            .as_i64()
            .unwrap()
            < 600
    );
    // The index now says pages go stale at once: they are revalidated
    // with their ETag, and the 304 keeps the stored copy.
    server.cache_control(Some("no-cache"));
    server.clear_log();
    let _ = report(&advise_live(
        dir.path(),
        &kb,
        &["--index-url", &index, "--refresh"],
    ));
    assert!(
        pages(&server)
            .iter()
            .all(|s| s.if_none_match.is_some() && s.status == 304)
    );
    server.clear_log();
    let third = report(&advise_live(dir.path(), &kb, &["--index-url", &index]));
    assert_eq!(
        third["knowledge_base"]["pages"]["revalidated"], 2,
        "{}",
        third["knowledge_base"]
    );
    // --refresh-package asks for one page whatever its age.
    server.cache_control(Some("max-age=600"));
    let _ = report(&advise_live(
        dir.path(),
        &kb,
        &["--index-url", &index, "--refresh"],
    ));
    server.clear_log();
    let _ = report(&advise_live(
        dir.path(),
        &kb,
        &["--index-url", &index, "--refresh-package", "text-unidecode"],
    ));
    let asked: Vec<String> = pages(&server).into_iter().map(|s| s.path).collect();
    assert_eq!(asked, ["/simple/text-unidecode/"]);
    // Our own freshness (--max-age, default 10 minutes) applies when the
    // index sets none.
    server.cache_control(None);
    let fresh_kb = dir.path().join("kb-no-cache-control.sqlite");
    let _ = report(&advise_live(
        dir.path(),
        &fresh_kb,
        &["--index-url", &index],
    ));
    server.clear_log();
    let _ = report(&advise_live(
        dir.path(),
        &fresh_kb,
        &["--index-url", &index],
    ));
    assert!(pages(&server).is_empty());
    let _ = report(&advise_live(
        dir.path(),
        &fresh_kb,
        &["--index-url", &index, "--max-age", "0"],
    ));
    assert_eq!(pages(&server).len(), 2);
}

#[test]
fn a_project_snapshot_gives_the_live_lock_offline() {
    let server = IndexServer::start();
    // A project no other knowledge base knows: two releases with PEP 658
    // metadata files.
    let file = |v: &str, sha: char| {
        serde_json::json!({
            "filename": format!("fresh-{v}-py3-none-any.whl"),
            "url": format!("../../files/fresh-{v}-py3-none-any.whl"),
            "hashes": {"sha256": sha.to_string().repeat(64)},
            "core-metadata": true,
            "upload-time": "2024-01-01T00:00:00Z",
            "yanked": false,
        })
    };
    server.add(
        "/simple/fresh/",
        serde_json::json!({"meta": {"api-version": "1.1"}, "name": "fresh",
            "files": [file("1.0", 'a'), file("0.9", 'b')]})
        .to_string(),
    );
    for v in ["1.0", "0.9"] {
        server.add(
            &format!("/files/fresh-{v}-py3-none-any.whl.metadata"),
            format!("Metadata-Version: 2.1\nName: fresh\nVersion: {v}\nRequires-Dist: six\n\n"),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("requirements.in"),
        "python-slugify\npyperclip\nsix<1.17\nfresh\n",
    )
    .unwrap();
    let kb = dir.path().join("kb.sqlite");
    let index = server.url("/simple/");
    // Freeze what resolving the project needs.
    let out = thoth()
        .env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", &kb)
        .arg("-C")
        .arg(dir.path())
        .args([
            "snapshot",
            "sync",
            "--project",
            "requirements.in",
            "-t",
            "latest",
            "--json",
            "-o",
            "snap.sqlite",
            // A legacy name of the index, recorded as the snapshot's data.
            "--index-alias",
            "http://127.0.0.9:1/legacy/",
            "--index-url",
        ])
        .arg(&index)
        .output()
        .unwrap();
    let sync = report(&out);
    let stored = &sync["snapshot"];
    // Every release of every project met, the unfetched ones marked so.
    assert_eq!(stored["projects"], 5, "{sync}");
    let count = |k: &str| stored[k].as_u64().unwrap();
    assert_eq!(count("releases"), 8, "{sync}");
    assert_eq!(
        count("with_metadata") + count("metadata_unavailable") + count("not_fetched"),
        8,
        "{sync}"
    );
    assert!(count("with_metadata") >= 5, "{sync}");
    assert!(
        count("not_fetched") >= 1,
        "fresh 0.9 was never needed: {sync}"
    );
    // The live run and an offline run on the snapshot alone (a new, empty
    // user knowledge base, no index reachable) write the same lock.
    let live = advise_live(dir.path(), &kb, &["--index-url", &index, "-o", "live.txt"]);
    report(&live);
    drop(server);
    let offline = thoth()
        .env("THOTH_KB", dir.path().join("other-kb.sqlite"))
        .arg("-C")
        .arg(dir.path())
        .args([
            "advise",
            "-t",
            "latest",
            "--format",
            "requirements",
            "--snapshot",
            "snap.sqlite",
            "-o",
            "offline.txt",
        ])
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let body = |f: &str| {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body("live.txt"), body("offline.txt"));
    assert!(body("offline.txt").contains("python-slugify==8.0.4"));
    // A release the live run never needed says so offline, instead of
    // being silently absent.
    std::fs::write(dir.path().join("requirements.in"), "fresh<1\n").unwrap();
    let out = thoth()
        .env("THOTH_KB", dir.path().join("other-kb.sqlite"))
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "-t", "latest", "--snapshot", "snap.sqlite"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "fresh 0.9: dependency metadata unavailable: metadata not in the knowledge base"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("snapshot sync --project"), "{stderr}");

    // A Pipfile whose source names the legacy name: read as the index
    // (offline, from the snapshot), said so, and locked under the index's
    // own URL, as Pipenv does with its index's legacy host.
    let pipenv = dir.path().join("pipenv");
    std::fs::create_dir_all(&pipenv).unwrap();
    std::fs::write(
        pipenv.join("Pipfile"),
        "[[source]]\nname = \"legacy\"\nurl = \"http://127.0.0.9:1/simple\"\nverify_ssl = true\n\n[packages]\npython-slugify = \"*\"\n",
    )
    .unwrap();
    let out = thoth()
        .env("THOTH_KB", dir.path().join("other-kb.sqlite"))
        .arg("-C")
        .arg(&pipenv)
        .args(["advise", "-t", "latest", "--snapshot", "../snap.sqlite"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "source `legacy` names http://127.0.0.9:1/simple, a legacy name of the index"
        ),
        "{stderr}"
    );
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(pipenv.join("Pipfile.lock")).unwrap())
            .unwrap();
    let source = &lock["_meta"]["sources"][0];
    assert_eq!(source["name"], "legacy");
    assert_eq!(
        source["url"].as_str().unwrap(),
        index.trim_end_matches('/'),
        "{lock}"
    );
    assert_eq!(lock["default"]["python-slugify"]["version"], "==8.0.4");
}
