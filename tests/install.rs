//! The three lock formats, written by `advise` from a loopback index of
//! wheels the test builds, installed unchanged into fresh virtual
//! environments by real installers on a patch release of the target
//! Python, then imported.
//!
//! Installers: the machine's `python3` and pip for requirements.txt; pip
//! 26 or newer and uv for pylock.toml; micropipenv for Pipfile.lock. They
//! are looked up in `THOTH_INSTALL_TOOLS` (a virtual environment holding
//! them, which `.ci/run` prepares) and then on `PATH`. A missing installer
//! skips its part with a message, unless `THOTH_REQUIRE_INSTALLERS=1`
//! (set by `.ci/run` when it could install them), which makes it a
//! failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::index::IndexServer;
use common::thoth;
use common::wheel::{Wheel, wheel};

fn required() -> bool {
    std::env::var("THOTH_REQUIRE_INSTALLERS").as_deref() == Ok("1")
}

/// `name` from the tools environment or `PATH`.
fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(t) = std::env::var_os("THOTH_INSTALL_TOOLS") {
        dirs.push(Path::new(&t).join("bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

fn missing(what: &str) {
    assert!(
        !required(),
        "{what} is not installed and THOTH_REQUIRE_INSTALLERS=1"
    );
    eprintln!("skipping: {what} is not installed");
}

fn run(cmd: &mut Command) -> Output {
    cmd.env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_CACHE_DIR", "1")
        .env("PIP_NO_INPUT", "1")
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("UV_INDEX_URL")
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH");
    cmd.output().unwrap()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The machine's Python: its path and `major.minor.micro`.
fn python() -> Option<(PathBuf, String)> {
    let py = tool("python3")?;
    let out = Command::new(&py)
        .args([
            "-c",
            "import sys; print('.'.join(map(str, sys.version_info[:3])))",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| (py, String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

/// A fresh virtual environment at `dir` (with pip when `with_pip`).
fn venv(python: &Path, dir: &Path, with_pip: bool) -> PathBuf {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]);
    if !with_pip {
        cmd.arg("--without-pip");
    }
    ok(&run(cmd.arg(dir)), "python3 -m venv");
    dir.join("bin/python")
}

/// The loopback index: wheels built here, with a dependency under a marker that holds, one under a
/// marker that does not (and is not on the index at all), and a newer
/// release that needs a Python nobody has.
fn index() -> IndexServer {
    let server = IndexServer::start();
    let built: Vec<Wheel> = vec![
        wheel(
            "tinyapp",
            "1.0",
            Some(">=3.7"),
            &[
                "tinylib>=1.0",
                "tinycore>=1.10",
                "tinyextra; python_version >= \"3.8\"",
                "tinywin; sys_platform == \"win32\"",
            ],
        ),
        wheel("tinylib", "1.0", None, &[]),
        wheel("tinylib", "2.0", Some(">=3.99"), &[]),
        wheel("tinyextra", "1.0", None, &["tinycore"]),
        wheel("tinycore", "1.16.0", Some(">=2.7, !=3.0.*"), &[]),
    ];
    let mut pages: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
        std::collections::BTreeMap::new();
    for w in &built {
        let name = w.filename.split('-').next().unwrap().to_string();
        let requires_python = w
            .metadata
            .lines()
            .find_map(|l| l.strip_prefix("Requires-Python: "))
            .map(str::to_string);
        server.add(&format!("/files/{}", w.filename), w.bytes.clone());
        server.add(
            &format!("/files/{}.metadata", w.filename),
            w.metadata.clone(),
        );
        let metadata_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            w.metadata.as_bytes(),
        ));
        pages.entry(name).or_default().push(serde_json::json!({
            "filename": w.filename,
            "url": format!("../../files/{}", w.filename),
            "hashes": {"sha256": w.sha256},
            "requires-python": requires_python,
            "core-metadata": {"sha256": metadata_sha},
            "upload-time": "2024-05-01T00:00:00Z",
            "size": w.bytes.len(),
            "yanked": false,
        }));
    }
    for (name, files) in pages {
        server.add(
            &format!("/simple/{name}/"),
            serde_json::json!({"meta": {"api-version": "1.1"}, "name": name, "files": files})
                .to_string(),
        );
    }
    server
}

/// Import every locked package in `python` and check the versions
/// installed are the locked ones and that pip sees no broken requirement.
fn check_installed(machine: &Path, python: &Path, what: &str) {
    let script = "import importlib.metadata as m, tinyapp, tinylib, tinyextra, tinycore\n\
                  print(tinyapp.VERSION, tinylib.VERSION, tinyextra.VERSION, tinycore.VERSION)\n\
                  print(sorted(d.metadata['Name'].lower() for d in m.distributions()))";
    let out = ok(
        &run(Command::new(python).args(["-c", script])),
        &format!("{what}: import"),
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1.0 1.0 1.0 1.16.0"), "{what}: {out}");
    let installed = lines.next().unwrap_or_default();
    // Nothing else from the lock (pip itself may be there).
    assert!(!installed.contains("tinywin"), "{what}: {installed}");
    let out = run(Command::new(machine)
        .args(["-m", "pip", "--python"])
        .arg(python)
        .arg("check"));
    ok(&out, &format!("{what}: pip check"));
}

#[test]
fn every_lock_format_installs_unchanged_into_a_fresh_environment() {
    let Some((python, full)) = python() else {
        missing("python3");
        return;
    };
    let minor: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
    let server = index();
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let index_url = server.url("/simple");
    std::fs::write(
        project.join("Pipfile"),
        format!(
            "[[source]]\nname = \"local\"\nurl = \"{index_url}\"\nverify_ssl = false\n\n\
             [packages]\ntinyapp = \"*\"\n\n[requires]\npython_version = \"{minor}\"\n"
        ),
    )
    .unwrap();
    let kb = root.path().join("kb.sqlite");
    for (format, file) in [
        ("pipfile-lock", "Pipfile.lock"),
        ("requirements", "requirements.txt"),
        ("pylock", "pylock.toml"),
    ] {
        let out = thoth()
            .env_remove("THOTH_OFFLINE")
            .env("THOTH_KB", &kb)
            .arg("-C")
            .arg(&project)
            .args(["advise", "-t", "latest", "--format", format, "-o", file])
            .output()
            .unwrap();
        ok(&out, &format!("advise --format {format}"));
    }
    let pylock = std::fs::read_to_string(project.join("pylock.toml")).unwrap();
    // The target is a minor version: every patch release of it is admitted.
    assert!(
        pylock.contains(&format!("python_version == '{minor}'")),
        "{pylock}"
    );
    // The dependency taken under a marker carries it.
    assert!(
        pylock.contains(
            "name = \"tinyextra\"\nversion = \"1.0\"\nmarker = \"python_full_version >= '3.8'\""
        ),
        "{pylock}"
    );
    assert!(!pylock.contains("tinywin"), "{pylock}");

    let envs = root.path().join("envs");
    // requirements.txt: the machine's pip, hashes required.
    let py = venv(&python, &envs.join("requirements"), false);
    let out = run(Command::new(&python)
        .args(["-m", "pip", "--python"])
        .arg(&py)
        .args(["install", "--require-hashes", "-r"])
        .arg(project.join("requirements.txt")));
    ok(&out, "pip install --require-hashes -r requirements.txt");
    check_installed(&python, &py, "requirements.txt");

    // pylock.toml: uv, and pip when it reads pylock files.
    match tool("uv") {
        Some(uv) => {
            let py = venv(&python, &envs.join("pylock-uv"), false);
            let out = run(Command::new(&uv)
                .env("UV_CACHE_DIR", root.path().join("uv-cache"))
                .args(["pip", "install", "--python"])
                .arg(&py)
                .arg("-r")
                .arg(project.join("pylock.toml")));
            ok(&out, "uv pip install -r pylock.toml");
            check_installed(&python, &py, "pylock.toml (uv)");
        }
        None => missing("uv"),
    }
    let pip_reads_pylock = tool("pip").filter(|pip| {
        Command::new(pip)
            .args(["install", "--help"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("pylock"))
    });
    match pip_reads_pylock {
        Some(pip) => {
            let py = venv(&python, &envs.join("pylock-pip"), false);
            let out = run(Command::new(&pip)
                .arg("--python")
                .arg(&py)
                .args(["install", "-r"])
                .arg(project.join("pylock.toml")));
            ok(&out, "pip install -r pylock.toml");
            check_installed(&python, &py, "pylock.toml (pip)");
        }
        None => missing("a pip that reads pylock.toml (26 or newer)"),
    }

    // Pipfile.lock: micropipenv, in the project directory, with --deploy
    // (the lock must match the Pipfile), driving the new environment's pip.
    match tool("micropipenv") {
        Some(micropipenv) => {
            let py = venv(&python, &envs.join("pipfile-lock"), true);
            let out = run(Command::new(&micropipenv)
                .current_dir(&project)
                .env("MICROPIPENV_PIP_BIN", py.with_file_name("pip"))
                .args(["install", "--deploy"]));
            ok(&out, "micropipenv install --deploy");
            check_installed(&python, &py, "Pipfile.lock");
        }
        None => missing("micropipenv"),
    }
}
