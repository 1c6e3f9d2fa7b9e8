//! Every input format parsed from realistic files in tests/fixtures/inputs.

use std::path::{Path, PathBuf};

use thoth_rs::environment::TargetEnvironment;
use thoth_rs::input::constraints::read_constraints;
use thoth_rs::input::pipfile::Pipfile;
use thoth_rs::input::pipfile_lock::PipfileLock;
use thoth_rs::input::pyproject::PyProject;
use thoth_rs::input::requirements::RequirementsFile;
use thoth_rs::input::thoth_yaml::{Field, Text, ThothConfig};
use thoth_rs::input::{DeclaredRequirement, Project, ProjectKind};
use thoth_rs::policy::{RecommendationType, RequirementsFormat};
use thoth_rs::python::parse_version;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inputs")
        .join(rel)
}

fn names(reqs: &[DeclaredRequirement]) -> Vec<String> {
    reqs.iter()
        .map(|r| r.requirement.name.to_string())
        .collect()
}

fn find<'a>(reqs: &'a [DeclaredRequirement], name: &str) -> &'a DeclaredRequirement {
    reqs.iter()
        .find(|r| r.requirement.name.as_ref() == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

#[test]
fn pipfile_sources_packages_and_sections() {
    let p = Pipfile::from_path(&fixture("Pipfile")).unwrap();
    assert_eq!(p.sources.len(), 2);
    assert_eq!(p.sources[0].name, "local-mirror");
    assert!(!p.sources[0].verify_ssl);
    assert_eq!(
        names(&p.packages),
        [
            "flask",
            "flask-sqlalchemy",
            "numpy",
            "pywin32",
            "requests",
            "tensorflow",
            "uvloop"
        ]
    );
    assert_eq!(names(&p.dev_packages), ["pytest", "pytest-cov"]);

    let flask = find(&p.packages, "flask");
    assert!(
        flask
            .requirement
            .specifiers
            .contains(&parse_version("2.3.3").unwrap())
    );
    assert!(
        !flask
            .requirement
            .specifiers
            .contains(&parse_version("2.3.4").unwrap())
    );
    assert_eq!(flask.origin.line, 12);

    let numpy = find(&p.packages, "numpy");
    assert_eq!(numpy.index.as_deref(), Some("internal"));

    let requests = find(&p.packages, "requests");
    assert!(requests.requirement.specifiers.is_empty());
    let extras: Vec<String> = requests
        .requirement
        .extras
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(extras, ["socks", "security"]);

    // Marker keys become a marker, combined with `markers`.
    let pywin32 = find(&p.packages, "pywin32");
    assert_eq!(
        pywin32.requirement.marker.as_ref().unwrap().text,
        "sys_platform == 'win32'"
    );
    let uvloop = find(&p.packages, "uvloop");
    let text = &uvloop.requirement.marker.as_ref().unwrap().text;
    assert!(
        text.contains("sys_platform != 'win32'")
            && text.contains("platform_python_implementation == 'CPython'"),
        "{text}"
    );

    assert_eq!(p.requires.python_version.as_deref(), Some("3.10"));
    assert!(p.allow_prereleases);
    assert!(p.thoth.disable_index_adjustment);
    assert_eq!(p.thoth.allow_prereleases.get("tensorflow"), Some(&true));
    // The raw document is kept for Pipenv's hash.
    assert!(p.raw.contains_key("packages") && p.raw.contains_key("thoth"));
}

#[test]
fn pipfile_lock_entries() {
    let lock = PipfileLock::from_path(&fixture("Pipfile.lock")).unwrap();
    assert_eq!(lock.pipfile_spec, Some(6));
    assert_eq!(
        lock.requires.get("python_version").map(String::as_str),
        Some("3.10")
    );
    assert_eq!(lock.sources[0].name, "local-mirror");
    assert_eq!(lock.default.len(), 3);
    let flask = &lock.default["flask"];
    assert_eq!(flask.version, parse_version("2.3.3").unwrap());
    assert_eq!(flask.index.as_deref(), Some("local-mirror"));
    let click = &lock.default["click"];
    assert_eq!(click.hashes.len(), 2);
    assert_eq!(click.markers.as_deref(), Some("python_version >= '3.7'"));
    assert_eq!(lock.default["requests"].extras, ["socks"]);
    assert_eq!(
        lock.develop["pytest"].version,
        parse_version("7.4.3").unwrap()
    );
    assert!(lock.hash.as_deref().unwrap().len() == 64);
}

#[test]
fn requirements_with_includes_options_and_hashes() {
    let file = RequirementsFile::from_path(&fixture("requirements/requirements.in")).unwrap();
    assert_eq!(
        file.index_url.as_deref(),
        Some("http://127.0.0.1:8080/simple/")
    );
    assert_eq!(file.extra_index_urls, ["http://127.0.0.1:8081/simple/"]);
    // -r base.txt (which includes common.txt) comes first, in file order.
    assert_eq!(
        names(&file.requirements),
        [
            "urllib3",
            "requests",
            "django",
            "celery",
            "gunicorn",
            "psycopg2-binary"
        ]
    );
    assert_eq!(names(&file.constraints), ["django", "celery"]);

    let urllib3 = find(&file.requirements, "urllib3");
    assert!(urllib3.origin.file.ends_with("common.txt"));
    assert!(
        !urllib3
            .requirement
            .specifiers
            .contains(&parse_version("3.0").unwrap())
    );

    let celery = find(&file.requirements, "celery");
    assert_eq!(celery.requirement.extras.len(), 1);
    assert!(celery.requirement.marker.is_some());

    // A continued line keeps the number of its first physical line.
    let gunicorn = find(&file.requirements, "gunicorn");
    assert_eq!(gunicorn.origin.line, 9);
    assert_eq!(
        gunicorn.requirement.marker.as_ref().unwrap().text,
        "sys_platform == \"linux\""
    );

    let psycopg = find(&file.requirements, "psycopg2-binary");
    assert_eq!(psycopg.hashes.len(), 2);
    assert!(
        psycopg
            .hashes
            .iter()
            .all(|h| h.starts_with("sha256:") && h.len() == 71)
    );
}

#[test]
fn requirements_cycle_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "flask\n-r b.txt\n").unwrap();
    std::fs::write(dir.path().join("b.txt"), "\n-r a.txt\n").unwrap();
    let err = RequirementsFile::from_path(&dir.path().join("a.txt")).unwrap_err();
    assert!(err.message.contains("include cycle"), "{err}");
    assert!(err.file.ends_with("b.txt"));
    assert_eq!(err.line, Some(2));
}

#[test]
fn pyproject_dependencies_extras_and_groups() {
    let p = PyProject::from_path(&fixture("pyproject.toml")).unwrap();
    assert_eq!(p.name.as_deref(), Some("analytics-api"));
    assert_eq!(
        names(&p.dependencies),
        ["fastapi", "pydantic", "sqlalchemy"]
    );
    let rp = p.requires_python.as_ref().unwrap();
    assert!(rp.contains(&parse_version("3.12.1").unwrap()));
    assert!(!rp.contains(&parse_version("3.13").unwrap()));
    // Extra and group names are normalised.
    assert_eq!(
        p.optional_dependencies.keys().collect::<Vec<_>>(),
        ["postgres", "s3"]
    );
    assert_eq!(names(&p.optional_dependencies["s3"]), ["boto3", "s3fs"]);
    assert_eq!(names(&p.dependency_groups["typing"]), ["mypy"]);
    assert_eq!(
        names(&p.dependency_groups["test"]),
        ["pytest", "pytest-asyncio", "mypy"]
    );
    assert_eq!(
        names(&p.dependency_groups["dev"]),
        ["pytest", "pytest-asyncio", "mypy", "ruff"]
    );
}

#[test]
fn thoth_yaml_keeps_absent_null_and_values_apart() {
    let c = ThothConfig::from_path(&fixture("thoth.yaml")).unwrap();
    let cfg = &c.config;
    assert_eq!(cfg.host, Field::Null);
    assert_eq!(cfg.tls_verify, Field::Value(true));
    assert_eq!(cfg.virtualenv, Field::Absent);
    assert_eq!(
        cfg.requirements_format,
        Field::Value(RequirementsFormat::PipTools)
    );
    assert_eq!(
        cfg.recommendation_type,
        Field::Value(RecommendationType::Testing)
    );
    assert_eq!(cfg.runtime_environments.len(), 3);

    let ubi = &cfg.runtime_environments[0];
    assert_eq!(ubi.name, Field::Value("ubi8-py38".to_string()));
    let hw = ubi.hardware.value().unwrap();
    assert_eq!(hw.cpu_family, Field::Value(6));
    assert_eq!(hw.gpu_model, Field::Null);
    assert_eq!(hw.cpu_flags, Field::Absent);
    assert_eq!(ubi.cudnn_version, Field::Null);
    assert_eq!(ubi.mkl_version, Field::Absent);
    assert_eq!(ubi.cuda_version, Field::Value(Text("11.8".into())));
    let labels = ubi.labels.value().unwrap();
    assert_eq!(labels["requester"], Text("ci".into()));

    // A YAML number is accepted (with a warning).
    assert_eq!(
        cfg.runtime_environments[1].python_version,
        Field::Value(Text("3.9".into()))
    );
    assert_eq!(cfg.runtime_environments[2].operating_system, Field::Null);

    // Unknown keys warn, with their path.
    let warnings = c.warnings.join("\n");
    assert!(warnings.contains("frobnicate"), "{warnings}");
    assert!(
        warnings.contains("runtime_environments[0].colour"),
        "{warnings}"
    );
    assert!(
        warnings.contains("runtime_environments[1].python_version"),
        "{warnings}"
    );

    let chosen = c.environment(Some("minimal")).unwrap().unwrap();
    let target = TargetEnvironment::from_runtime(Some(chosen), None);
    assert_eq!(target.python_version, "3.9");
    assert!(c.environment(Some("nope")).is_err());
}

#[test]
fn constraints_in_both_syntaxes() {
    let pip = read_constraints(&fixture("requirements/constraints.txt")).unwrap();
    assert_eq!(names(&pip), ["django", "celery"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("constraints.json");
    std::fs::write(
        &json,
        r#"[{"name": "NumPy", "version": "<2", "markers": "python_version < '3.12'"}, {"name": "scipy"}]"#,
    )
    .unwrap();
    let parsed = read_constraints(&json).unwrap();
    assert_eq!(names(&parsed), ["numpy", "scipy"]);
    assert!(parsed[0].requirement.marker.is_some());
    assert!(parsed[1].requirement.specifiers.is_empty());
}

#[test]
fn project_discovery_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "flask\n").unwrap();
    assert_eq!(
        Project::discover(dir.path()).unwrap().kind,
        ProjectKind::Requirements
    );
    std::fs::write(dir.path().join("requirements.in"), "django\n").unwrap();
    assert_eq!(
        names(&Project::discover(dir.path()).unwrap().requirements),
        ["django"]
    );
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname='x'\ndependencies=['fastapi']\n",
    )
    .unwrap();
    assert_eq!(
        Project::discover(dir.path()).unwrap().kind,
        ProjectKind::PyProject
    );
    std::fs::copy(fixture("Pipfile"), dir.path().join("Pipfile")).unwrap();
    std::fs::copy(fixture("Pipfile.lock"), dir.path().join("Pipfile.lock")).unwrap();
    let project = Project::discover(dir.path()).unwrap();
    assert_eq!(project.kind, ProjectKind::Pipfile);
    assert_eq!(project.python_version.as_deref(), Some("3.10"));
    assert_eq!(project.lock.as_ref().unwrap().default.len(), 3);
}

#[test]
fn example_projects_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let project = Project::discover(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert!(!project.requirements.is_empty(), "{}", dir.display());
        ThothConfig::from_path(&dir.join(".thoth.yaml")).unwrap_or_else(|e| panic!("{e}"));
        seen += 1;
    }
    assert!(seen >= 3);
}
