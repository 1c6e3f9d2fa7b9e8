//! The target a run resolves for, parsed once.
//!
//! [`TargetEnvironment`] is the environment as described (by `.thoth.yaml`,
//! the project's Python pin, a base image) and as the report shows it: text.
//! [`Target`] is built from it once, after every input has been read, and
//! holds what the stages compare against: the interpreter as numbers and a
//! version, the platform as wheel tags see it, the PEP 508 marker values,
//! and the runtime versions units ask about. It is passed down read-only.

use super::{BadPythonVersion, TargetEnvironment};
use crate::kb::CandidateQuery;
use crate::record::tags::{Platform, WheelTarget, glibc_for_os};

use crate::python::{MarkerEnvironment, Version, parse_version};

/// The environment a run resolves for, with every value parsed.
#[derive(Debug, Clone)]
pub struct Target {
    /// As described, and as the report shows it.
    pub environment: TargetEnvironment,
    /// The interpreter and platform wheels must fit (glibc from the base
    /// image when analysed, else the operating system's).
    pub wheels: WheelTarget,
    /// The interpreter's full version (`X.Y.0` standing for every patch
    /// release unless the patch was given).
    pub python_full_version: Version,
    /// PEP 508 marker values (CPython assumed).
    pub markers: MarkerEnvironment,
    /// The versions prescription units compare against.
    pub versions: RuntimeVersions,
}

/// A runtime version a unit may ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stated {
    /// Not given.
    Absent,
    /// Given, and a version.
    Version(Version),
    /// Given, but not a version: it satisfies no specifier, yet it is
    /// present.
    Unreadable,
}

impl Stated {
    fn of(text: Option<&str>) -> Self {
        match text {
            None => Self::Absent,
            Some(t) => parse_version(t).map_or(Self::Unreadable, Self::Version),
        }
    }
}

/// The versions of the environment that units' `runtime_environment`
/// conditions compare, parsed once per run rather than once per unit.
#[derive(Debug, Clone)]
pub struct RuntimeVersions {
    /// Python `X.Y`.
    pub python: Stated,
    /// CUDA.
    pub cuda: Stated,
    /// cuDNN.
    pub cudnn: Stated,
    /// MKL.
    pub mkl: Stated,
    /// OpenBLAS.
    pub openblas: Stated,
    /// Open MPI.
    pub openmpi: Stated,
}

/// A target that cannot be resolved for.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    /// The Python version is not `X.Y` (or `X.Y.Z`).
    #[error("python version `{0}` is not of the form X.Y")]
    NotXy(String),
    /// The Python version does not parse.
    #[error(transparent)]
    Python(#[from] BadPythonVersion),
    /// The full Python version does not parse.
    #[error("python version: {0}")]
    FullVersion(String),
}

impl Target {
    /// Parse `environment` once.
    pub fn new(environment: TargetEnvironment) -> Result<Self, TargetError> {
        let python = python_xy(&environment.python_version)
            .ok_or_else(|| TargetError::NotXy(environment.python_version.clone()))?;
        let glibc = environment
            .glibc
            .as_deref()
            .and_then(|g| {
                let (a, b) = g.split_once('.')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            })
            .unwrap_or_else(|| {
                glibc_for_os(
                    environment.os_name.as_deref(),
                    environment.os_version.as_deref(),
                )
            });
        let platform = environment.parsed_platform(glibc);
        let markers = markers(&environment, &platform)?;
        let python_full_version = parse_version(&environment.python_full_version)
            .map_err(|e| TargetError::FullVersion(e.message))?;
        let e = &environment;
        let versions = RuntimeVersions {
            python: Stated::of(Some(&e.python_version)),
            cuda: Stated::of(e.cuda_version.as_deref()),
            cudnn: Stated::of(e.cudnn_version.as_deref()),
            mkl: Stated::of(e.mkl_version.as_deref()),
            openblas: Stated::of(e.openblas_version.as_deref()),
            openmpi: Stated::of(e.openmpi_version.as_deref()),
        };
        Ok(Self {
            wheels: WheelTarget { python, platform },
            python_full_version,
            markers,
            versions,
            environment,
        })
    }

    /// What the knowledge base is asked for candidates: this target's
    /// wheels and interpreter, and files uploaded no later than
    /// `exclude_newer`.
    pub fn query(&self, exclude_newer: Option<crate::time::Timestamp>) -> CandidateQuery {
        CandidateQuery {
            target: self.wheels.clone(),
            python_full_version: self.python_full_version.clone(),
            exclude_newer: exclude_newer.map(|t| t.to_string()),
        }
    }
}

/// `X.Y` (or `X.Y.Z`) as numbers.
fn python_xy(version: &str) -> Option<(u16, u16)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// (sys_platform, platform_system, platform_machine, os_name) of a
/// platform, as CPython reports them there.
pub fn marker_parts(platform: &Platform) -> (&'static str, &'static str, String, &'static str) {
    match platform {
        Platform::Linux { arch, .. } => ("linux", "Linux", arch.clone(), "posix"),
        Platform::Macos { arch, .. } => ("darwin", "Darwin", arch.clone(), "posix"),
        Platform::Windows { arch } => {
            let machine = match arch.as_str() {
                "win32" => "x86".to_string(),
                "amd64" => "AMD64".to_string(),
                "arm64" => "ARM64".to_string(),
                other => other.to_string(),
            };
            ("win32", "Windows", machine, "nt")
        }
    }
}

/// The PEP 508 marker environment of `env` on `platform`.
pub fn markers(
    env: &TargetEnvironment,
    platform: &Platform,
) -> Result<MarkerEnvironment, BadPythonVersion> {
    let (sys_platform, platform_system, machine, os_name) = marker_parts(platform);
    MarkerEnvironment::try_from(pep508_rs::MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &env.python_full_version,
        os_name,
        platform_machine: &machine,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system,
        platform_version: "",
        python_full_version: &env.python_full_version,
        python_version: &env.python_version,
        sys_platform,
    })
    .map_err(BadPythonVersion)
}
