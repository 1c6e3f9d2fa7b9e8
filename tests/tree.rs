//! `thoth-rs tree` and `thoth-rs why` on the example projects (bundled
//! snapshot), checked against the edges the independent lock checker
//! derives on its own; on a lock with a dependency cycle and on a
//! Pipfile.lock in Pipenv's layout, served by a loopback index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod common;
use common::bundled::{advise, bundled_kb, example, roots_of, target_of};
use common::checker::{edges, lock_versions};
use common::index::IndexServer;
use common::thoth;

type Edges = BTreeSet<(Option<String>, String)>;

/// Run `thoth-rs ARGS` in `dir`, require success, parse stdout as JSON.
fn json_in(dir: &Path, args: &[&str]) -> serde_json::Value {
    let out = thoth().arg("-C").arg(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every parent → child edge a drawn tree shows (the top is the project
/// when `top_is_project`).
fn tree_edges(node: &serde_json::Value, parent: Option<String>, out: &mut Edges) {
    for child in node["children"].as_array().into_iter().flatten() {
        let name = child["name"].as_str().unwrap().to_string();
        out.insert((parent.clone(), name.clone()));
        tree_edges(child, Some(name), out);
    }
}

/// Simple paths from the project to `target` in `edges`.
fn count_paths(edges: &Edges, target: &str) -> usize {
    fn walk(edges: &Edges, at: Option<&str>, target: &str, seen: &mut Vec<String>) -> usize {
        let mut n = 0;
        for (from, to) in edges {
            if from.as_deref() != at || seen.contains(to) {
                continue;
            }
            if to == target {
                n += 1;
            } else {
                seen.push(to.clone());
                n += walk(edges, Some(to), target, seen);
                seen.pop();
            }
        }
        n
    }
    walk(edges, None, target, &mut Vec::new())
}

#[test]
fn tree_inverted_tree_and_why_match_the_independent_checker() {
    for (name, dev) in [
        ("flask-app", true),
        ("data-science", false),
        ("ml-service", false),
    ] {
        let dir = example(name);
        let dev_args: &[&str] = if dev { &["--dev"] } else { &[] };
        let (report, text, tmp) = advise(&dir, dev_args);
        let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
        let sections: &[&str] = if dev {
            &["default", "develop"]
        } else {
            &["default"]
        };
        let versions = lock_versions(&lock, sections);
        let kb = bundled_kb(&report);
        let target = target_of(&report);
        let expected = edges(&kb, &target, &roots_of(&report, dev), &versions);
        assert!(expected.len() > versions.len() / 2, "{name}: {expected:?}");
        let lock_path = tmp.path().join("lock");
        let lock_arg = lock_path.to_str().unwrap();

        // The tree of the lock, and of a fresh resolution (the same stack).
        for from_lock in [true, false] {
            let mut args = vec!["tree", "--offline", "--json"];
            args.extend_from_slice(dev_args);
            if from_lock {
                args.extend_from_slice(&["--lock", lock_arg]);
            }
            let tree = json_in(&dir, &args);
            let mut shown = Edges::new();
            tree_edges(&tree["tree"], None, &mut shown);
            assert_eq!(shown, expected, "{name} (from the lock: {from_lock})");
            // Each package once with its subtree; repeats are marked.
            let text = tree["tree"].to_string();
            for package in versions.keys() {
                let expanded = text.matches(&format!("\"name\":\"{package}\"")).count();
                assert!(expanded >= 1, "{name}: {package} missing from the tree");
            }
        }

        // Inverted: who requires each package, as the checker says (every
        // package two or more others require, and the first ten).
        let shared: Vec<&String> = versions
            .keys()
            .enumerate()
            .filter(|(i, p)| *i < 10 || expected.iter().filter(|(_, to)| to == *p).count() > 1)
            .map(|(_, p)| p)
            .take(30)
            .collect();
        for package in shared {
            let tree = json_in(
                &dir,
                &[
                    &["tree", "--offline", "--json", "--invert", "--depth", "1"][..],
                    dev_args,
                    &["--lock", lock_arg, "--package", package],
                ]
                .concat(),
            );
            let parents: BTreeSet<String> = tree["tree"]["children"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            let want: BTreeSet<String> = expected
                .iter()
                .filter(|(_, to)| to == package)
                .map(|(from, _)| from.clone().unwrap_or_else(|| tree_project_label(&dir)))
                .collect();
            assert_eq!(parents, want, "{name}: who requires {package}");
        }

        // why: every path from the project, each ending at the package.
        for package in versions.keys().take(12) {
            let why = json_in(
                &dir,
                &[
                    &["why", package, "--offline", "--json"][..],
                    dev_args,
                    &["--lock", lock_arg],
                ]
                .concat(),
            );
            let paths = why["paths"].as_array().unwrap();
            assert_eq!(
                paths.len(),
                count_paths(&expected, package).min(100),
                "{name}: paths to {package}"
            );
            for path in paths {
                let steps = path.as_array().unwrap();
                assert_eq!(steps[0]["from"], "the project");
                assert_eq!(
                    steps.last().unwrap()["to"],
                    format!("{package} {}", versions[package])
                );
            }
            assert_eq!(why["version"], versions[package].as_str());
        }
    }
}

/// The label `tree` gives the project: its file name.
fn tree_project_label(dir: &Path) -> String {
    [
        "Pipfile",
        "pyproject.toml",
        "requirements.in",
        "requirements.txt",
    ]
    .iter()
    .find(|f| dir.join(f).is_file())
    .unwrap()
    .to_string()
}

/// A loopback index with `cyc-a` and `cyc-b` requiring each other, and an
/// older and a newer `cyc-c`.
fn cyclic_index() -> IndexServer {
    let server = IndexServer::start();
    let project = |name: &str, versions: &[(&str, &str)]| {
        let files: Vec<serde_json::Value> = versions
            .iter()
            .enumerate()
            .map(|(i, (v, _))| {
                serde_json::json!({
                    "filename": format!("{}-{v}-py3-none-any.whl", name.replace('-', "_")),
                    "url": format!("../../files/{}-{v}-py3-none-any.whl", name.replace('-', "_")),
                    "hashes": {"sha256": format!("{:064x}", i + 7 * name.len())},
                    "core-metadata": true,
                    "upload-time": format!("2024-0{}-01T00:00:00Z", i + 1),
                    "yanked": false,
                })
            })
            .collect();
        server.add(
            &format!("/simple/{name}/"),
            serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files})
                .to_string(),
        );
        for (v, requires) in versions {
            let mut meta = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {v}\n");
            for r in requires.split(',').filter(|r| !r.is_empty()) {
                meta.push_str(&format!("Requires-Dist: {r}\n"));
            }
            server.add(
                &format!(
                    "/files/{}-{v}-py3-none-any.whl.metadata",
                    name.replace('-', "_")
                ),
                meta,
            );
        }
    };
    project("cyc-a", &[("1.0", "cyc-b>=1")]);
    project("cyc-b", &[("1.0", "cyc-a,cyc-c<2")]);
    project("cyc-c", &[("1.0", ""), ("2.0", "")]);
    server
}

fn with_index(server: &IndexServer, dir: &Path, args: &[&str]) -> std::process::Output {
    thoth()
        .env_remove("THOTH_OFFLINE")
        .env("THOTH_KB", dir.join("kb.sqlite"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .args(["--index-url", &server.url("/simple/")])
        .output()
        .unwrap()
}

#[test]
fn a_lock_with_a_cycle_is_drawn_once_and_marked() {
    let server = cyclic_index();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "cyc-a\n").unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        "cyc-a==1.0\ncyc-b==1.0\ncyc-c==1.0\n",
    )
    .unwrap();
    let out = with_index(
        &server,
        dir.path(),
        &[
            "tree",
            "--json",
            "--project",
            "requirements.in",
            "--lock",
            "requirements.txt",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tree: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    tree["from"] = serde_json::Value::String("LOCK".into());
    let got = serde_json::to_string_pretty(&tree).unwrap();
    // Snapshot of the whole --json output (regenerate with
    // THOTH_UPDATE_SNAPSHOTS=1).
    let expected_path = common::index::fixtures()
        .parent()
        .unwrap()
        .join("tree/cycle.json");
    if std::env::var_os("THOTH_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
        std::fs::write(&expected_path, &got).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap();
    assert_eq!(got.trim(), expected.trim());
    assert!(got.contains("\"note\": \"cycle\""), "{got}");

    // The same edges as the independent checker derives, on a snapshot
    // of that index (offline, so both read the very same data).
    let out = with_index(
        &server,
        dir.path(),
        &[
            "snapshot",
            "sync",
            "--roots",
            "requirements.txt",
            "-o",
            "snap.sqlite",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = json_in(
        dir.path(),
        &[
            "tree",
            "--offline",
            "--json",
            "--snapshot",
            "snap.sqlite",
            "--project",
            "requirements.in",
            "--lock",
            "requirements.txt",
        ],
    );
    let mut shown = Edges::new();
    tree_edges(&offline["tree"], None, &mut shown);
    let kb = thoth_rs::kb::sqlite::SqliteKb::open(&dir.path().join("snap.sqlite")).unwrap();
    let env = thoth_rs::environment::TargetEnvironment::from_runtime(None, None);
    let target = common::checker::Target {
        query: thoth_rs::advise::candidate_query(&env, None).unwrap(),
        markers: env.marker_environment().unwrap(),
    };
    let lock: BTreeMap<String, String> = ["cyc-a", "cyc-b", "cyc-c"]
        .iter()
        .map(|n| (n.to_string(), "1.0".to_string()))
        .collect();
    let roots = vec![("cyc-a".to_string(), Vec::new(), String::new(), None)];
    let expected = edges(&kb, &target, &roots, &lock);
    assert_eq!(shown, expected);
    assert!(expected.contains(&(Some("cyc-b".into()), "cyc-a".into())));

    // The text form marks it too, and `why` finds the one path.
    let out = with_index(
        &server,
        dir.path(),
        &[
            "tree",
            "--project",
            "requirements.in",
            "--lock",
            "requirements.txt",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cyc-a 1.0 (cyc-a) [cycle]"), "{text}");
    let out = with_index(
        &server,
        dir.path(),
        &[
            "why",
            "cyc-c",
            "--json",
            "--project",
            "requirements.in",
            "--lock",
            "requirements.txt",
        ],
    );
    let why: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(why["paths"].as_array().unwrap().len(), 1);
    // Why not cyc-c 2.0: the requirement that excludes it, and who makes it.
    assert_eq!(why["newer_not_taken"][0]["version"], "2.0");
    assert_eq!(
        why["newer_not_taken"][0]["why"],
        "excluded by cyc-c<2 (required by cyc-b 1.0)"
    );
}

#[test]
fn a_pipfile_lock_written_by_pipenv_is_explained() {
    let server = cyclic_index();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Pipfile"),
        "[[source]]\nurl = \"URL\"\nverify_ssl = true\nname = \"pypi\"\n\n[packages]\ncyc-a = \"*\"\n\n[dev-packages]\n\n[requires]\npython_version = \"3.11\"\n"
            .replace("URL", &server.url("/simple/")),
    )
    .unwrap();
    // Pipenv's layout: _meta with its hash, pipfile-spec, requires and
    // sources; each package with hashes, index, markers and version.
    let entry = |name: &str, v: &str, sha: &str, markers: Option<&str>| {
        let mut e = serde_json::json!({
            "hashes": [format!("sha256:{sha}")],
            "index": "pypi",
            "version": format!("=={v}"),
        });
        if let Some(m) = markers {
            e["markers"] = serde_json::Value::String(m.into());
        }
        (name.to_string(), e)
    };
    let default: serde_json::Map<String, serde_json::Value> = [
        entry("cyc-a", "1.0", &format!("{:064x}", 35), None),
        entry("cyc-b", "1.0", &format!("{:064x}", 35), None),
        entry(
            "cyc-c",
            "1.0",
            &format!("{:064x}", 35),
            Some("python_version >= '3.8'"),
        ),
    ]
    .into_iter()
    .collect();
    let lock = serde_json::json!({
        "_meta": {
            "hash": {"sha256": "0".repeat(64)},
            "pipfile-spec": 6,
            "requires": {"python_version": "3.11"},
            "sources": [{"name": "pypi", "url": server.url("/simple/"), "verify_ssl": true}],
        },
        "default": default,
        "develop": {},
    });
    std::fs::write(
        dir.path().join("Pipfile.lock"),
        serde_json::to_string_pretty(&lock).unwrap() + "\n",
    )
    .unwrap();
    let out = with_index(
        &server,
        dir.path(),
        &["why", "cyc-c", "--lock", "Pipfile.lock"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("cyc-c 1.0 (in "), "{text}");
    assert!(
        text.contains(
            "the project → cyc-a → cyc-a 1.0 → cyc-b>=1 → cyc-b 1.0 → cyc-c<2 → cyc-c 1.0"
        ),
        "{text}"
    );
    assert!(
        text.contains("2.0: excluded by cyc-c<2 (required by cyc-b 1.0)"),
        "{text}"
    );
    let counts: BTreeMap<&str, usize> = [("paths", text.matches(" → cyc-c 1.0").count())]
        .into_iter()
        .collect();
    assert_eq!(counts["paths"], 1, "{text}");
}

/// For a lock, `why` names what keeps each newer release out: here
/// nothing in the lock does, but some carry advisories.
#[test]
fn why_names_advisories_on_newer_releases_of_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "requests\n").unwrap();
    std::fs::write(dir.path().join("old.txt"), "requests==2.29.0\n").unwrap();
    let why = json_in(
        dir.path(),
        &[
            "why",
            "requests",
            "--offline",
            "--json",
            "--lock",
            "old.txt",
        ],
    );
    let newer: BTreeMap<String, String> = why["newer_not_taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["version"].as_str().unwrap().to_string(),
                n["why"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        newer["2.30.0"].starts_with("allowed by every requirement on it here, but affected by "),
        "{newer:?}"
    );
    assert!(
        newer["2.31.0"].starts_with("allowed by every requirement on it here; "),
        "{newer:?}"
    );
    assert_eq!(why["required_by"][0]["by"], "the project");
}
