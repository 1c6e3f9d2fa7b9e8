//! The runtime environment a stack is resolved for.
//!
//! `.thoth.yaml` describes it (possibly partially); [`TargetEnvironment`]
//! fills what is missing with documented defaults, records which values were
//! defaulted, and derives the PEP 508 marker environment.

pub mod detect;
pub mod target;

pub use target::{Target, TargetError};

use crate::input::thoth_yaml::RuntimeEnvironment;
use crate::python::MarkerEnvironment;

/// A fully specified environment to resolve for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetEnvironment {
    /// Name from `.thoth.yaml`, if any.
    pub name: Option<String>,
    /// OS name (`rhel`, `ubuntu`, …).
    pub os_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// `X.Y`.
    pub python_version: String,
    /// `X.Y.Z` (`X.Y.0` standing for every patch release unless
    /// [`Self::python_patch_known`]).
    pub python_full_version: String,
    /// The patch release was given (`python_version: "3.11.7"`, the
    /// project's `python_full_version`, a base image's interpreter): locks
    /// then name it; otherwise they admit every patch release of `X.Y`.
    pub python_patch_known: bool,
    /// sysconfig platform, e.g. `linux-x86_64`.
    pub platform: String,
    /// CPU family.
    pub cpu_family: Option<i64>,
    /// CPU model.
    pub cpu_model: Option<i64>,
    /// CPU flags.
    pub cpu_flags: Vec<String>,
    /// GPU model.
    pub gpu_model: Option<String>,
    /// CUDA version.
    pub cuda_version: Option<String>,
    /// cuDNN version.
    pub cudnn_version: Option<String>,
    /// MKL version.
    pub mkl_version: Option<String>,
    /// OpenBLAS version.
    pub openblas_version: Option<String>,
    /// Open MPI version.
    pub openmpi_version: Option<String>,
    /// Base container image.
    pub base_image: Option<String>,
    /// How the project goes onto the base image (`None`: the default for
    /// its interpreter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_image_mode: Option<ImageMode>,
    /// glibc of the base image (`X.Y`), when analysed; otherwise the OS's
    /// is assumed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glibc: Option<String>,
    /// Which values were not given and how they were chosen.
    pub defaulted: Vec<String>,
}

/// Python version used when neither the environment nor the project names one.
pub const DEFAULT_PYTHON: &str = "3.11";

impl TargetEnvironment {
    /// The marker clause and `requires-python` a lock for this target
    /// states: the patch release when it is known, else every patch
    /// release of `X.Y` (a real interpreter is always some `X.Y.Z`).
    pub fn python_bounds(&self) -> (String, String) {
        if self.python_patch_known {
            (
                format!("python_full_version == '{}'", self.python_full_version),
                format!("=={}", self.python_full_version),
            )
        } else {
            (
                format!("python_version == '{}'", self.python_version),
                format!("=={}.*", self.python_version),
            )
        }
    }

    /// Complete a (possibly partial) runtime environment.
    ///
    /// `project_python` is the project's own pin (`[requires] python_version`),
    /// used when the environment leaves the Python version open.
    pub fn from_runtime(env: Option<&RuntimeEnvironment>, project_python: Option<&str>) -> Self {
        let mut defaulted = Vec::new();
        let text = |f: &crate::input::thoth_yaml::Field<crate::input::thoth_yaml::Text>| {
            f.value().map(|t| t.0.clone())
        };
        let os = env.and_then(|e| e.operating_system.value());
        let hw = env.and_then(|e| e.hardware.value());
        let python = env.and_then(|e| text(&e.python_version));
        let mut python_patch_known = false;
        let (python_version, python_full_version) = match (python, project_python) {
            (Some(v), _) => {
                let parts: Vec<&str> = v.split('.').collect();
                if parts.len() >= 3 {
                    python_patch_known = true;
                    (parts[..2].join("."), v.clone())
                } else {
                    (v.clone(), format!("{v}.0"))
                }
            }
            (None, Some(p)) => {
                let parts: Vec<&str> = p.split('.').collect();
                let xy = parts.iter().take(2).copied().collect::<Vec<_>>().join(".");
                let full = if parts.len() >= 3 {
                    python_patch_known = true;
                    p.to_string()
                } else {
                    format!("{xy}.0")
                };
                defaulted.push(format!(
                    "python_version: {xy} (from the project's [requires])"
                ));
                (xy, full)
            }
            (None, None) => {
                defaulted.push(format!("python_version: {DEFAULT_PYTHON} (default)"));
                (DEFAULT_PYTHON.to_string(), format!("{DEFAULT_PYTHON}.0"))
            }
        };
        let platform = match env.and_then(|e| e.platform.value()) {
            Some(p) => p.clone(),
            None => {
                defaulted.push("platform: linux-x86_64 (default)".into());
                "linux-x86_64".into()
            }
        };
        Self {
            name: env.and_then(|e| e.name.value().cloned()),
            os_name: os.and_then(|o| text(&o.name)),
            os_version: os.and_then(|o| text(&o.version)),
            python_version,
            python_full_version,
            python_patch_known,
            platform,
            cpu_family: hw.and_then(|h| h.cpu_family.value().copied()),
            cpu_model: hw.and_then(|h| h.cpu_model.value().copied()),
            cpu_flags: hw
                .and_then(|h| h.cpu_flags.value().cloned())
                .unwrap_or_default(),
            gpu_model: hw.and_then(|h| text(&h.gpu_model)),
            cuda_version: env.and_then(|e| text(&e.cuda_version)),
            cudnn_version: env.and_then(|e| text(&e.cudnn_version)),
            mkl_version: env.and_then(|e| text(&e.mkl_version)),
            openblas_version: env.and_then(|e| text(&e.openblas_version)),
            openmpi_version: env.and_then(|e| text(&e.openmpi_version)),
            base_image: env.and_then(|e| e.base_image.value().cloned()),
            base_image_mode: env
                .and_then(|e| e.base_image_mode.value())
                .and_then(|m| ImageMode::parse(m)),
            glibc: None,
            defaulted,
        }
    }

    /// The platform as wheel tags and markers see it (`glibc` only
    /// matters to Linux wheels).
    pub fn parsed_platform(&self, glibc: (u16, u16)) -> crate::record::tags::Platform {
        crate::record::tags::Platform::from_sysconfig(&self.platform, glibc)
    }

    /// The PEP 508 marker environment (CPython assumed). A run parses it
    /// once, into [`Target::markers`].
    pub fn marker_environment(&self) -> Result<MarkerEnvironment, BadPythonVersion> {
        target::markers(
            self,
            &self.parsed_platform(crate::record::tags::DEFAULT_GLIBC),
        )
    }
}

/// How a project is installed on top of a base image, which decides what
/// of the image's Python the stack must live with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageMode {
    /// A new virtual environment from the image's interpreter: the image's
    /// Python packages are not in it. The interpreter, glibc, CUDA and the
    /// system packages still count. The default for an externally managed
    /// (PEP 668) interpreter.
    NewVenv,
    /// A new virtual environment with `--system-site-packages`: the image's
    /// packages are installed already; the stack may upgrade one over the
    /// image's copy, and the report says which it keeps and which it
    /// replaces.
    SystemSitePackages,
    /// Into the interpreter's own environment (a virtual environment the
    /// image made, or a plain install): its packages are pinned, with
    /// their requirements as installed. The default for those.
    IntoImage,
}

impl ImageMode {
    /// All modes with their names (`.thoth.yaml`'s `base_image_mode`,
    /// `--base-image-mode`).
    pub const NAMES: [(&'static str, ImageMode); 3] = [
        ("new-venv", ImageMode::NewVenv),
        ("system-site-packages", ImageMode::SystemSitePackages),
        ("into-image", ImageMode::IntoImage),
    ];

    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }

    /// In words, for the run's output.
    pub fn describe(self) -> &'static str {
        match self {
            Self::NewVenv => {
                "a new virtual environment (the image's Python packages are not in it)"
            }
            Self::SystemSitePackages => {
                "a new virtual environment with the system site packages (the image's packages are kept unless the stack replaces them)"
            }
            Self::IntoImage => "into the image's environment (its packages are pinned)",
        }
    }
}

/// The runtime environment's Python version is not a version.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid Python version in the runtime environment: {0}")]
pub struct BadPythonVersion(pub pep508_rs::pep440_rs::VersionParseError);

/// What is known about the base image (filled by image analysis).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageFacts {
    /// RPM packages as field maps (package_name, package_version, release, …).
    pub rpm_packages: Vec<std::collections::BTreeMap<String, String>>,
    /// The system packages could not be read: `rpm_packages` conditions
    /// then hold neither way.
    pub system_packages_unknown: bool,
    /// Python packages: (normalised name, version, location).
    pub python_packages: Vec<(String, String, String)>,
    /// ABI symbols provided (GLIBC_2.28, …).
    pub abi: std::collections::BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::parse_marker;

    #[test]
    fn defaults_are_recorded() {
        let env = TargetEnvironment::from_runtime(None, Some("3.9"));
        assert_eq!(env.python_version, "3.9");
        assert_eq!(env.python_full_version, "3.9.0");
        assert_eq!(env.platform, "linux-x86_64");
        assert_eq!(env.defaulted.len(), 2);
    }

    #[test]
    fn markers_follow_platform_and_python() {
        let mut env = TargetEnvironment::from_runtime(None, Some("3.11"));
        for (platform, holds) in [
            (
                "linux-x86_64",
                "sys_platform == 'linux' and platform_machine == 'x86_64' and python_version >= '3.10'",
            ),
            (
                "macosx-11.0-arm64",
                "sys_platform == 'darwin' and platform_machine == 'arm64'",
            ),
            // An Intel Mac's machine is x86_64 (not the `64` after its last `_`).
            (
                "macosx-10.9-x86_64",
                "sys_platform == 'darwin' and platform_machine == 'x86_64'",
            ),
            (
                "win-amd64",
                "os_name == 'nt' and platform_machine == 'AMD64'",
            ),
        ] {
            env.platform = platform.into();
            let markers = env.marker_environment().unwrap();
            assert!(
                parse_marker(holds).unwrap().tree.evaluate(&markers, &[]),
                "{platform}: {holds}"
            );
        }
    }
}
