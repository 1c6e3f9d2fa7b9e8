//! Malformed inputs across every format: each must fail with exit code 2 and
//! a message naming the file, the line (where the format has lines) and what
//! was wrong — and never panic.

use std::path::Path;
use std::process::Command;

struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    needles: &'static [&'static str],
}

const PIPFILE_OK: &str = "[packages]\nflask = \"*\"\n";

fn run_case(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in case.files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_thoth-rs"))
        .arg("-C")
        .arg(dir.path())
        .args(case.args)
        .env_remove("THOTH_LOG")
        .env("THOTH_OFFLINE", "1")
        .env("THOTH_KB", dir.path().join("kb.sqlite"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut problems = Vec::new();
    if out.status.code() != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", out.status.code()));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".to_string());
    }
    for needle in case.needles {
        if !stderr.contains(needle) {
            problems.push(format!("missing `{needle}`"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n--- stderr ---\n{stderr}",
            case.name,
            problems.join("; ")
        ))
    }
}

const ADVISE: &[&str] = &["advise"];

const CASES: &[Case] = &[
    // ---- Pipfile -------------------------------------------------------
    Case {
        name: "pipfile: invalid TOML",
        files: &[("Pipfile", "[packages]\nflask = \"*\"\n[dev-packages\n")],
        args: ADVISE,
        needles: &["Pipfile:3:", "invalid TOML"],
    },
    Case {
        name: "pipfile: name ending in underscore",
        files: &[("Pipfile", "[packages]\nflask = \"*\"\n\"foo_\" = \"*\"\n")],
        args: ADVISE,
        needles: &["Pipfile:3:", "packages.foo_", "invalid package name"],
    },
    Case {
        name: "pipfile: non-ASCII name",
        files: &[("Pipfile", "[packages]\n\"café-tools\" = \"*\"\n")],
        args: ADVISE,
        needles: &["Pipfile:2:", "invalid package name `café-tools`"],
    },
    Case {
        name: "pipfile: bad specifier",
        files: &[("Pipfile", "[packages]\nrequests = \">=2.0,<\"\n")],
        args: ADVISE,
        needles: &[
            "Pipfile:2:",
            "packages.requests",
            "invalid version specifier",
        ],
    },
    Case {
        name: "pipfile: git entry",
        files: &[(
            "Pipfile",
            "[packages]\nmylib = {git = \"ssh://127.0.0.1/mylib.git\", ref = \"main\"}\n",
        )],
        args: ADVISE,
        needles: &[
            "Pipfile:2:",
            "packages.mylib.git",
            "VCS, path, file and editable",
        ],
    },
    Case {
        name: "pipfile: path entry",
        files: &[("Pipfile", "[packages]\n\nlocal = {path = \"./local\"}\n")],
        args: ADVISE,
        needles: &["Pipfile:3:", "packages.local.path", "not supported"],
    },
    Case {
        name: "pipfile: editable entry",
        files: &[(
            "Pipfile",
            "[packages]\nx = {editable = true, version = \"*\"}\n",
        )],
        args: ADVISE,
        needles: &["packages.x.editable", "not supported"],
    },
    Case {
        name: "pipfile: unknown index",
        files: &[(
            "Pipfile",
            "[[source]]\nname = \"mirror\"\nurl = \"http://127.0.0.1/simple\"\n\n[packages]\nnumpy = {version = \"*\", index = \"private\"}\n",
        )],
        args: ADVISE,
        needles: &[
            "Pipfile:6:",
            "packages.numpy.index",
            "index `private` is not a [[source]] name (known: mirror)",
        ],
    },
    Case {
        name: "pipfile: bad markers",
        files: &[(
            "Pipfile",
            "[packages]\nuvloop = {version = \"*\", markers = \"sys_platform = 'linux'\"}\n",
        )],
        args: ADVISE,
        needles: &["packages.uvloop.markers", "invalid marker"],
    },
    Case {
        name: "pipfile: marker with unparsable version",
        files: &[(
            "Pipfile",
            "[packages]\nx = {version = \"*\", markers = \"python_version >= 'three'\"}\n",
        )],
        args: ADVISE,
        needles: &["packages.x.markers", "invalid marker"],
    },
    Case {
        name: "pipfile: extras not a list",
        files: &[(
            "Pipfile",
            "[packages]\nrequests = {version = \"*\", extras = \"socks\"}\n",
        )],
        args: ADVISE,
        needles: &["packages.requests.extras", "expected a list of extra names"],
    },
    Case {
        name: "pipfile: version is a number",
        files: &[("Pipfile", "[packages]\nflask = {version = 2}\n")],
        args: ADVISE,
        needles: &[
            "packages.flask.version",
            "expected a version specifier string, found integer",
        ],
    },
    Case {
        name: "pipfile: entry is an array",
        files: &[("Pipfile", "[packages]\nflask = [\"*\"]\n")],
        args: ADVISE,
        needles: &["Pipfile:2:", "found array"],
    },
    Case {
        name: "pipfile: source without url",
        files: &[(
            "Pipfile",
            "[[source]]\nname = \"pypi\"\n\n[packages]\nflask = \"*\"\n",
        )],
        args: ADVISE,
        needles: &["Pipfile:1:", "source[0].url", "missing required key"],
    },
    Case {
        name: "pipfile: duplicate source names",
        files: &[(
            "Pipfile",
            "[[source]]\nname = \"a\"\nurl = \"http://127.0.0.1/1\"\n[[source]]\nname = \"a\"\nurl = \"http://127.0.0.1/2\"\n",
        )],
        args: ADVISE,
        needles: &["Pipfile:4:", "duplicate source name `a`"],
    },
    Case {
        name: "pipfile: verify_ssl not a bool",
        files: &[(
            "Pipfile",
            "[[source]]\nname = \"a\"\nurl = \"http://127.0.0.1/1\"\nverify_ssl = \"yes\"\n",
        )],
        args: ADVISE,
        needles: &["source[0].verify_ssl", "expected true or false"],
    },
    Case {
        name: "pipfile: bad python_version",
        files: &[(
            "Pipfile",
            "[packages]\nflask = \"*\"\n\n[requires]\npython_version = \"three\"\n",
        )],
        args: ADVISE,
        needles: &[
            "Pipfile:4:",
            "requires.python_version",
            "invalid version `three`",
        ],
    },
    Case {
        // A version but not X.Y: the error names the Pipfile it came from,
        // not a .thoth.yaml there is none of.
        name: "pipfile: python_version without a minor version",
        files: &[(
            "Pipfile",
            "[packages]\nflask = \"*\"\n\n[requires]\npython_version = \"3\"\n",
        )],
        args: ADVISE,
        needles: &["Pipfile: key `python_version`", "not of the form X.Y"],
    },
    Case {
        name: "pipfile: duplicate after normalisation",
        files: &[("Pipfile", "[packages]\nFlask = \"*\"\nflask = \">=2\"\n")],
        args: ADVISE,
        needles: &["packages.flask", "listed twice"],
    },
    Case {
        name: "pipfile: allow_prereleases not a bool",
        files: &[(
            "Pipfile",
            "[packages]\nflask = \"*\"\n[pipenv]\nallow_prereleases = \"yes\"\n",
        )],
        args: ADVISE,
        needles: &["Pipfile:3:", "pipenv.allow_prereleases"],
    },
    Case {
        name: "pipfile: thoth allow_prereleases value",
        files: &[(
            "Pipfile",
            "[packages]\nflask = \"*\"\n[thoth.allow_prereleases]\nflask = \"yes\"\n",
        )],
        args: ADVISE,
        needles: &["thoth.allow_prereleases.flask", "expected true or false"],
    },
    // ---- requirements files -------------------------------------------
    Case {
        name: "requirements: name that crashes pep508_rs",
        files: &[("requirements.txt", "flask\n1. >= 1\n")],
        args: ADVISE,
        needles: &["requirements.txt:2", "invalid package name `1.`"],
    },
    Case {
        name: "requirements: dropped marker clause",
        files: &[("requirements.txt", "foo ; python_version >= \"three\"\n")],
        args: ADVISE,
        needles: &["requirements.txt:1", "invalid marker"],
    },
    Case {
        name: "requirements: editable",
        files: &[("requirements.txt", "flask\n-e .\n")],
        args: ADVISE,
        needles: &[
            "requirements.txt:2",
            "editable requirements (`-e`) are not supported",
        ],
    },
    Case {
        name: "requirements: direct URL",
        files: &[(
            "requirements.txt",
            "pip @ http://127.0.0.1/pip-23.0-py3-none-any.whl\n",
        )],
        args: ADVISE,
        needles: &["requirements.txt:1", "direct URL requirement"],
    },
    Case {
        name: "requirements: local path",
        files: &[("requirements.txt", "./vendor/mylib\n")],
        args: ADVISE,
        needles: &["requirements.txt:1", "path or URL"],
    },
    Case {
        name: "requirements: missing include",
        files: &[("requirements.txt", "flask\n-r missing.txt\n")],
        args: ADVISE,
        needles: &[
            "requirements.txt:2",
            "cannot read included file",
            "missing.txt",
        ],
    },
    Case {
        name: "requirements: include cycle",
        files: &[
            ("requirements.txt", "-r other.txt\n"),
            ("other.txt", "flask\n-r requirements.txt\n"),
        ],
        args: ADVISE,
        needles: &["other.txt:2", "include cycle"],
    },
    Case {
        name: "requirements: unknown option",
        files: &[("requirements.txt", "--frobnicate\nflask\n")],
        args: ADVISE,
        needles: &["requirements.txt:1", "unknown option `--frobnicate`"],
    },
    Case {
        name: "requirements: bad hash digest",
        files: &[("requirements.txt", "flask==2.3.3 --hash=sha256:xyz\n")],
        args: ADVISE,
        needles: &["requirements.txt:1", "invalid hash `sha256:xyz`"],
    },
    Case {
        name: "requirements: md5 hash",
        files: &[(
            "requirements.txt",
            "flask==2.3.3 --hash=md5:0123456789abcdef0123456789abcdef\n",
        )],
        args: ADVISE,
        needles: &["requirements.txt:1", "unsupported hash algorithm `md5`"],
    },
    Case {
        name: "requirements: index url not a URL",
        files: &[("requirements.txt", "-i not-a-url\nflask\n")],
        args: ADVISE,
        needles: &["requirements.txt:1", "is not a URL"],
    },
    Case {
        name: "requirements: -r without file",
        files: &[("requirements.txt", "flask\n-r\n")],
        args: ADVISE,
        needles: &["requirements.txt:2", "needs a file name"],
    },
    Case {
        name: "requirements: bad specifier",
        files: &[("requirements.txt", "\n\nflask >= 2.0.*\n")],
        args: ADVISE,
        needles: &["requirements.txt:3"],
    },
    Case {
        name: "requirements: constraint with extras",
        files: &[
            ("requirements.txt", "-c c.txt\nflask\n"),
            ("c.txt", "requests[socks]<3\n"),
        ],
        args: ADVISE,
        needles: &["c.txt:1", "constraints may not name extras"],
    },
    Case {
        name: "requirements: continuation into garbage",
        files: &[("requirements.in", "flask \\\n  >=2 \\\n  ; os_name ==\n")],
        args: ADVISE,
        needles: &["requirements.in:1"],
    },
    // ---- pyproject.toml -------------------------------------------------
    Case {
        name: "pyproject: invalid TOML",
        files: &[("pyproject.toml", "[project\nname = \"x\"\n")],
        args: ADVISE,
        needles: &["pyproject.toml:1:", "invalid TOML"],
    },
    Case {
        name: "pyproject: nothing to resolve",
        files: &[("pyproject.toml", "[tool.poetry]\nname = \"x\"\n")],
        args: ADVISE,
        needles: &["pyproject.toml", "no [project] table"],
    },
    Case {
        name: "pyproject: bad dependency",
        files: &[(
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = [\n  \"fastapi\",\n  \"pydantic >>= 2\",\n]\n",
        )],
        args: ADVISE,
        needles: &["pyproject.toml:5:", "project.dependencies"],
    },
    Case {
        name: "pyproject: include-group cycle",
        files: &[(
            "pyproject.toml",
            "[dependency-groups]\na = [{include-group = \"b\"}]\nb = [{include-group = \"a\"}]\n",
        )],
        args: ADVISE,
        needles: &["include-group cycle", "dependency-groups."],
    },
    Case {
        name: "pyproject: include-group unknown",
        files: &[(
            "pyproject.toml",
            "[dependency-groups]\ntest = [\"pytest\", {include-group = \"lint\"}]\n",
        )],
        args: ADVISE,
        needles: &[
            "pyproject.toml:2:",
            "include-group `lint` names no dependency group",
        ],
    },
    Case {
        name: "pyproject: invalid requires-python",
        files: &[(
            "pyproject.toml",
            "[project]\nname = \"x\"\nrequires-python = \">=3.8,\"\n",
        )],
        args: ADVISE,
        needles: &["pyproject.toml:3:", "project.requires-python"],
    },
    Case {
        name: "pyproject: dependencies not a list",
        files: &[(
            "pyproject.toml",
            "[project]\nname = \"x\"\ndependencies = \"flask\"\n",
        )],
        args: ADVISE,
        needles: &["pyproject.toml:3:", "invalid TOML"],
    },
    // ---- Pipfile.lock ---------------------------------------------------
    Case {
        name: "lock: invalid JSON",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "Pipfile.lock",
                "{\n  \"_meta\": {\n    \"sources\": [,]\n  }\n}\n",
            ),
        ],
        args: ADVISE,
        needles: &["Pipfile.lock:3:", "invalid Pipfile.lock"],
    },
    Case {
        name: "lock: unpinned version",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "Pipfile.lock",
                "{\"_meta\": {\"sources\": []},\n \"default\": {\n  \"flask\": {\"version\": \">=2\", \"hashes\": []}}}\n",
            ),
        ],
        args: ADVISE,
        needles: &["Pipfile.lock:3", "default.flask", "is not pinned"],
    },
    Case {
        name: "lock: missing hashes",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "Pipfile.lock",
                "{\"_meta\": {\"sources\": []}, \"default\": {\"flask\": {\"version\": \"==2.3.3\"}}}\n",
            ),
        ],
        args: ADVISE,
        needles: &["default.flask", "missing `hashes`"],
    },
    Case {
        name: "lock: bad hash",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "Pipfile.lock",
                "{\"_meta\": {\"sources\": []}, \"develop\": {\"pytest\": {\"version\": \"==7.4.3\", \"hashes\": [\"md5:00\"]}}}\n",
            ),
        ],
        args: ADVISE,
        needles: &["develop.pytest", "invalid hash `md5:00`"],
    },
    Case {
        name: "lock: index not in sources",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "Pipfile.lock",
                "{\"_meta\": {\"sources\": []}, \"default\": {\"flask\": {\"version\": \"==2.3.3\", \"hashes\": [], \"index\": \"pypi\"}}}\n",
            ),
        ],
        args: ADVISE,
        needles: &[
            "default.flask",
            "index `pypi` is not one of `_meta.sources`",
        ],
    },
    // ---- .thoth.yaml ----------------------------------------------------
    Case {
        name: "thoth.yaml: invalid YAML",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n   python_version: \"3.8\"\n",
            ),
        ],
        args: ADVISE,
        needles: &[".thoth.yaml:3:", "invalid .thoth.yaml"],
    },
    Case {
        name: "thoth.yaml: bad python_version",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n    python_version: \"three\"\n",
            ),
        ],
        args: ADVISE,
        needles: &[
            ".thoth.yaml:3",
            "runtime_environments[0].python_version",
            "expected MAJOR.MINOR",
        ],
    },
    Case {
        name: "thoth.yaml: unknown recommendation type",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (".thoth.yaml", "recommendation_type: fastest\n"),
        ],
        args: ADVISE,
        needles: &[".thoth.yaml:1:", "unknown recommendation type `fastest`"],
    },
    Case {
        name: "thoth.yaml: cpu_family not a number",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n    hardware:\n      cpu_family: six\n",
            ),
        ],
        args: ADVISE,
        needles: &[".thoth.yaml:4:", "invalid .thoth.yaml"],
    },
    Case {
        name: "thoth.yaml: os version without name",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n    operating_system:\n      version: \"8\"\n",
            ),
        ],
        args: ADVISE,
        needles: &[
            ".thoth.yaml:4",
            "operating_system.version is set but operating_system.name is not",
        ],
    },
    Case {
        name: "thoth.yaml: unknown environment",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (".thoth.yaml", "runtime_environments:\n  - name: a\n"),
        ],
        args: &["advise", "--runtime-environment", "gpu"],
        needles: &[
            ".thoth.yaml",
            "no runtime environment named `gpu` (defined: a)",
        ],
    },
    Case {
        name: "thoth.yaml: environment name with space",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (".thoth.yaml", "runtime_environments:\n  - name: my env\n"),
        ],
        args: ADVISE,
        needles: &[".thoth.yaml:2", "invalid environment name `my env`"],
    },
    Case {
        name: "thoth.yaml: duplicate environments",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n  - name: a\n",
            ),
        ],
        args: ADVISE,
        needles: &["defined twice"],
    },
    Case {
        name: "thoth.yaml: cuda version not a version",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                ".thoth.yaml",
                "runtime_environments:\n  - name: a\n    cuda_version: latest\n",
            ),
        ],
        args: ADVISE,
        needles: &[
            ".thoth.yaml:3",
            "runtime_environments[0].cuda_version",
            "invalid version `latest`",
        ],
    },
    // ---- constraints, labels and flags ----------------------------------
    Case {
        name: "constraints: JSON unknown field",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "c.json",
                "[\n {\"name\": \"numpy\", \"extras\": [\"x\"]}\n]\n",
            ),
        ],
        args: &["advise", "--constraints", "c.json"],
        needles: &["c.json:2:", "unknown field `extras`"],
    },
    Case {
        name: "constraints: duplicate",
        files: &[("Pipfile", PIPFILE_OK), ("c.txt", "numpy<2\nNumPy>=1.20\n")],
        args: &["advise", "--constraints", "c.txt"],
        needles: &["c.txt:2", "duplicate constraint for `numpy`"],
    },
    Case {
        name: "constraints: hash",
        files: &[
            ("Pipfile", PIPFILE_OK),
            (
                "c.txt",
                "numpy==1.26.4 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
            ),
        ],
        args: &["advise", "--constraints", "c.txt"],
        needles: &["c.txt:1", "constraints may not carry hashes"],
    },
    Case {
        name: "constraints: missing file",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--constraints", "nope.txt"],
        needles: &["nope.txt", "cannot read file"],
    },
    Case {
        name: "labels: no equals sign",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--labels", "requester"],
        needles: &["--labels", "has no `=`"],
    },
    Case {
        name: "flag: impossible date",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--exclude-newer", "2023-02-30"],
        needles: &["--exclude-newer", "invalid date `2023-02-30`"],
    },
    Case {
        name: "flag: negative time budget",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--time-budget=-1"],
        needles: &["--time-budget", "positive number"],
    },
    Case {
        name: "flag: unknown format",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--format", "yaml"],
        needles: &["invalid value 'yaml'"],
    },
    Case {
        name: "flag: unknown predictor",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--predictor", "magic"],
        needles: &["unknown predictor kind `magic`"],
    },
    Case {
        name: "flag: count above limit",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--limit", "2", "--count", "3"],
        needles: &["--count 3 is larger than --limit 2"],
    },
    Case {
        name: "flag: missing snapshot",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--snapshot", "kb.sqlite"],
        needles: &["--snapshot", "no such file"],
    },
    Case {
        name: "flag: missing prescriptions dir",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--prescriptions", "rx"],
        needles: &["--prescriptions", "not a directory"],
    },
    Case {
        name: "project: none found",
        files: &[("README.md", "hello\n")],
        args: ADVISE,
        needles: &[
            "no project file found: expected one of Pipfile, pyproject.toml, requirements.in, requirements.txt",
        ],
    },
    Case {
        name: "project: explicit file missing",
        files: &[("Pipfile", PIPFILE_OK)],
        args: &["advise", "--project", "other/Pipfile"],
        needles: &["other/Pipfile", "project file not found"],
    },
];

#[test]
fn malformed_inputs_fail_cleanly() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
    let failures: Vec<String> = CASES.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn missing_directory_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_thoth-rs"))
        .args(["-C", "/nonexistent/thoth-rs-test", "advise"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    assert!(Path::new(env!("CARGO_BIN_EXE_thoth-rs")).exists());
}
