//! Stage 1: what the user gave us, parsed into typed models and validated.
//!
//! Every parser returns an [`InputError`] naming the file, line (and column
//! where the format has one) and key; nothing here panics on bad input.

pub mod constraints;
pub mod error;
pub mod labels;
pub mod pipfile;
pub mod pipfile_lock;
pub mod pyproject;
pub mod requirements;
pub mod thoth_yaml;
pub mod yaml_budget;

use std::path::{Path, PathBuf};

pub use error::InputError;
use pipfile::Pipfile;
use pipfile_lock::PipfileLock;
use pyproject::PyProject;
use requirements::RequirementsFile;

use crate::python::{Requirement, VersionSpecifiers};

/// Where a requirement was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// File.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

/// A package index the project names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// Name used by `index = "…"`.
    pub name: String,
    /// The index URL (a simple API root).
    pub url: String,
    /// Verify TLS certificates.
    pub verify_ssl: bool,
}

/// A requirement as the user declared it, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRequirement {
    /// The PEP 508 requirement.
    pub requirement: Requirement,
    /// Source name the package must come from, if pinned to one.
    pub index: Option<String>,
    /// Allowed hashes (`--hash` in requirements files).
    pub hashes: Vec<String>,
    /// File and line.
    pub origin: Origin,
}

/// Which kind of project file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectKind {
    /// Pipfile.
    Pipfile,
    /// pyproject.toml.
    PyProject,
    /// requirements.in or requirements.txt.
    Requirements,
}

impl ProjectKind {
    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pipfile => "Pipfile",
            Self::PyProject => "pyproject.toml",
            Self::Requirements => "requirements file",
        }
    }
}

/// The project to resolve, whatever file it came from.
#[derive(Debug, Clone)]
pub struct Project {
    /// Kind of project file.
    pub kind: ProjectKind,
    /// The project file.
    pub path: PathBuf,
    /// Runtime requirements.
    pub requirements: Vec<DeclaredRequirement>,
    /// Development requirements (Pipfile dev-packages, the `dev` dependency group).
    pub dev_requirements: Vec<DeclaredRequirement>,
    /// Why the development requirements could not be read: an error for a
    /// run that includes them (`--dev`), a warning otherwise.
    pub dev_error: Option<InputError>,
    /// Constraints declared by the project itself (`-c` includes).
    pub constraints: Vec<DeclaredRequirement>,
    /// Indexes in priority order.
    pub sources: Vec<Source>,
    /// `--no-index` in a requirements file: no index may be asked.
    pub no_index: bool,
    /// Python version requirement (`[requires]` or `requires-python`).
    pub requires_python: Option<VersionSpecifiers>,
    /// Python version the project pins (`[requires] python_version`).
    pub python_version: Option<String>,
    /// Pre-releases allowed project-wide.
    pub allow_prereleases: bool,
    /// The Pipfile model, when the project is a Pipfile.
    pub pipfile: Option<Pipfile>,
    /// The pyproject model, when the project is a pyproject.toml.
    pub pyproject: Option<PyProject>,
    /// An existing Pipfile.lock next to the project file.
    pub lock: Option<PipfileLock>,
    /// Non-fatal findings.
    pub warnings: Vec<String>,
}

/// Project file names in the order they are looked for.
pub const PROJECT_FILES: &[&str] = &[
    "Pipfile",
    "pyproject.toml",
    "requirements.in",
    "requirements.txt",
];

/// Find the project file in `dir`.
pub fn find_project_file(dir: &Path) -> Result<PathBuf, InputError> {
    if !dir.is_dir() {
        return Err(InputError::file(dir, "not a directory"));
    }
    PROJECT_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            InputError::file(
                dir,
                format!(
                    "no project file found: expected one of {}",
                    PROJECT_FILES.join(", ")
                ),
            )
        })
}

impl Project {
    /// Load the project from an explicit file, choosing the parser by name.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let mut project = if file_name == "Pipfile" || file_name.ends_with(".Pipfile") {
            Self::from_pipfile(Pipfile::from_path(path)?)
        } else if file_name.ends_with(".toml") {
            Self::from_pyproject(PyProject::from_path(path)?)
        } else {
            Self::from_requirements(RequirementsFile::from_path(path)?)
        };
        let lock_path = path.with_file_name("Pipfile.lock");
        if project.kind == ProjectKind::Pipfile && lock_path.is_file() {
            project.lock = Some(PipfileLock::from_path(&lock_path)?);
        }
        Ok(project)
    }

    /// Find and load the project in `dir`.
    pub fn discover(dir: &Path) -> Result<Self, InputError> {
        Self::load(&find_project_file(dir)?)
    }

    fn from_pipfile(pipfile: Pipfile) -> Self {
        let python_version = pipfile
            .requires
            .python_full_version
            .clone()
            .or_else(|| pipfile.requires.python_version.clone());
        let requires_python = python_version
            .as_deref()
            .and_then(|v| crate::python::parse_specifiers(&format!("=={v}.*")).ok());
        Self {
            kind: ProjectKind::Pipfile,
            path: pipfile.path.clone(),
            requirements: pipfile.packages.clone(),
            dev_requirements: pipfile.dev_packages.clone(),
            dev_error: pipfile.dev_error.clone(),
            constraints: Vec::new(),
            sources: pipfile.sources.clone(),
            no_index: false,
            requires_python,
            python_version,
            allow_prereleases: pipfile.allow_prereleases,
            warnings: pipfile.warnings.clone(),
            pipfile: Some(pipfile),
            pyproject: None,
            lock: None,
        }
    }

    fn from_pyproject(pyproject: PyProject) -> Self {
        Self {
            kind: ProjectKind::PyProject,
            path: pyproject.path.clone(),
            requirements: pyproject.dependencies.clone(),
            dev_requirements: pyproject
                .dependency_groups
                .get("dev")
                .cloned()
                .unwrap_or_default(),
            constraints: Vec::new(),
            sources: Vec::new(),
            no_index: false,
            requires_python: pyproject.requires_python.clone(),
            python_version: None,
            allow_prereleases: false,
            dev_error: None,
            warnings: Vec::new(),
            pipfile: None,
            pyproject: Some(pyproject),
            lock: None,
        }
    }

    fn from_requirements(file: RequirementsFile) -> Self {
        let mut sources = Vec::new();
        if let Some(url) = &file.index_url {
            sources.push(Source {
                name: "index".into(),
                url: url.clone(),
                verify_ssl: true,
            });
        }
        for (i, url) in file.extra_index_urls.iter().enumerate() {
            sources.push(Source {
                name: format!("extra-{}", i + 1),
                url: url.clone(),
                verify_ssl: true,
            });
        }
        Self {
            kind: ProjectKind::Requirements,
            path: file.path.clone(),
            requirements: file.requirements,
            dev_requirements: Vec::new(),
            constraints: file.constraints,
            sources,
            no_index: file.no_index,
            requires_python: None,
            python_version: None,
            allow_prereleases: file.pre,
            pipfile: None,
            pyproject: None,
            lock: None,
            dev_error: None,
            warnings: file.warnings,
        }
    }
}
