//! Container images: what a base image already holds, so that a stack can
//! be resolved for it.
//!
//! [`inspect`] reads an OCI image layout, a `docker save` / OCI archive or
//! an unpacked root filesystem ([`source`]), applies the layers in memory
//! ([`tree`]) and reports the OS, RPM and deb packages, Python interpreters
//! and packages, the C/C++ runtime's ABI symbols and CUDA/cuDNN
//! ([`analyze`]). An analysis can be saved under a name and found again by
//! `advise --base-image NAME` or `.thoth.yaml`'s `base_image`, offline.

pub mod analyze;
pub mod elf;
pub mod python;
pub mod rpmdb;
pub mod source;
pub mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::environment::ImageFacts;
pub use crate::environment::ImageMode;
use crate::environment::TargetEnvironment;
pub use python::{Interpreter, InterpreterKind, PythonPackage};
pub use rpmdb::RpmPackage;
pub use source::ImageError;

/// Longest image name or path accepted (`base_image`, `--base-image`):
/// longer ones cannot be a file name on the systems we run on.
pub const MAX_REFERENCE_LEN: usize = 255;

/// Version of the saved analysis format.
pub const FORMAT_VERSION: u32 = 2;

/// `/etc/os-release`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID` (rhel, ubuntu, debian, …).
    pub id: Option<String>,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `ID_LIKE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_like: Option<String>,
    /// `PRETTY_NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

/// The RPM database and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RpmReport {
    /// Path of the database found, if any.
    pub database: Option<String>,
    /// Could the packages be read (true when there is no database)?
    pub readable: bool,
    /// Why not, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Installed packages.
    pub packages: Vec<RpmPackage>,
}

/// One installed Debian package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DebPackage {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
}

/// The mode that fits `interpreter` when none is chosen: a new virtual
/// environment for an externally managed (PEP 668) system interpreter,
/// otherwise into the image.
pub fn default_mode(interpreter: &Interpreter) -> ImageMode {
    if interpreter.kind == InterpreterKind::System && interpreter.externally_managed {
        ImageMode::NewVenv
    } else {
        ImageMode::IntoImage
    }
}

/// What an image holds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageAnalysis {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Name and tag (recorded in the image, or given with `--save`).
    pub reference: Option<String>,
    /// What was read.
    pub source: String,
    /// `oci-layout`, `oci-archive`, `docker-archive` or `rootfs`.
    pub kind: String,
    /// CPU architecture.
    pub architecture: Option<String>,
    /// Layers applied.
    pub layers: usize,
    /// `/etc/os-release`.
    pub os: Option<OsRelease>,
    /// RPM packages.
    pub rpm: RpmReport,
    /// Debian packages.
    pub deb_packages: Vec<DebPackage>,
    /// Python interpreters.
    pub python_interpreters: Vec<Interpreter>,
    /// Python packages, per site directory.
    pub python_packages: Vec<PythonPackage>,
    /// ELF version definitions of the C and C++ runtimes.
    pub abi: Vec<String>,
    /// Highest `GLIBC_X.Y` provided.
    pub glibc: Option<String>,
    /// CUDA (X.Y).
    pub cuda_version: Option<String>,
    /// cuDNN.
    pub cudnn_version: Option<String>,
    /// The image's `PATH` (its configuration's, else the usual default):
    /// which interpreter `python3` starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_path: Option<String>,
}

/// Analyse the image at `path`.
pub fn inspect(path: &Path) -> Result<ImageAnalysis, ImageError> {
    let loaded = source::load(path)?;
    let root = loaded.root.as_ref();
    let abi = analyze::abi_symbols(root);
    let rpm = analyze::rpm_packages(root);
    let deb_packages = analyze::deb_packages(root);
    let mut python_interpreters =
        python::interpreters(root, &loaded.env, &deb_packages, &rpm.packages);
    let python_packages = python::python_packages(root, &rpm.packages);
    python::attribute_sites(&mut python_interpreters, &python_packages);
    Ok(ImageAnalysis {
        format_version: FORMAT_VERSION,
        reference: loaded.reference.clone(),
        source: path.display().to_string(),
        kind: loaded.kind.to_string(),
        architecture: loaded.architecture.clone(),
        layers: loaded.layers,
        os: analyze::os_release(root),
        rpm,
        deb_packages,
        python_interpreters,
        python_packages,
        glibc: elf::highest_glibc(&abi),
        abi,
        cuda_version: analyze::cuda_version(root, &loaded.env),
        cudnn_version: analyze::cudnn_version(root, &loaded.env),
        env_path: loaded.env.get("PATH").cloned(),
    })
}

impl ImageAnalysis {
    /// What prescriptions' `runtime_environments` conditions look at.
    /// System packages are RPMs and, on Debian-family images, deb packages
    /// (`package_name`, `package_version`, `arch`).
    ///
    /// `python` is what prescriptions' `python_packages` conditions see:
    /// the packages already where the stack goes (none in a new virtual
    /// environment).
    pub fn facts(&self, python: &[&PythonPackage]) -> ImageFacts {
        let mut rpm_packages: Vec<BTreeMap<String, String>> = Vec::new();
        for p in &self.rpm.packages {
            let mut m = BTreeMap::new();
            m.insert("package_name".into(), p.name.clone());
            m.insert("package_version".into(), p.version.clone());
            m.insert("release".into(), p.release.clone());
            m.insert("package_identifier".into(), p.identifier());
            for (k, v) in [("epoch", &p.epoch), ("arch", &p.arch), ("src", &p.src)] {
                if let Some(v) = v {
                    m.insert(k.into(), v.clone());
                }
            }
            rpm_packages.push(m);
        }
        for p in &self.deb_packages {
            let mut m = BTreeMap::new();
            m.insert("package_name".into(), p.name.clone());
            m.insert("package_version".into(), p.version.clone());
            if let Some(a) = &p.architecture {
                m.insert("arch".into(), a.clone());
            }
            rpm_packages.push(m);
        }
        ImageFacts {
            rpm_packages,
            system_packages_unknown: !self.rpm.readable,
            python_packages: python
                .iter()
                .map(|p| (p.name.clone(), p.version.clone(), p.location.clone()))
                .collect(),
            abi: self.abi.iter().cloned().collect(),
        }
    }

    /// Where an interpreter's `bin` directory (or an alias's) comes in
    /// the image's `PATH`: lower is found first.
    fn path_rank(&self, i: &Interpreter) -> usize {
        let path = self
            .env_path
            .as_deref()
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        let dirs: Vec<&str> = path.split(':').map(|d| d.trim_end_matches('/')).collect();
        std::iter::once(&i.path)
            .chain(&i.aliases)
            .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
            .filter_map(|d| dirs.iter().position(|x| *x == d))
            .min()
            .unwrap_or(usize::MAX)
    }

    /// The interpreter a stack for Python `X.Y` goes to: the one of that
    /// version the image's `PATH` finds first (a virtual environment
    /// the image put first, say), else a virtual environment, a plain
    /// install, then an externally managed one.
    pub fn interpreter_for(&self, python_xy: &str) -> Option<&Interpreter> {
        self.python_interpreters
            .iter()
            .filter(|i| i.version == python_xy)
            .min_by_key(|i| {
                (
                    self.path_rank(i),
                    i.kind != InterpreterKind::VirtualEnvironment,
                    i.externally_managed,
                    i.path.clone(),
                )
            })
    }

    /// The interpreter a stack is resolved for when the environment does
    /// not name a Python version: the one the image's `PATH` finds first,
    /// newest on ties.
    fn main_interpreter(&self) -> Option<&Interpreter> {
        self.python_interpreters.iter().min_by_key(|i| {
            let version: Vec<u32> = i
                .version
                .split('.')
                .filter_map(|p| p.parse().ok())
                .collect();
            (self.path_rank(i), std::cmp::Reverse(version))
        })
    }

    /// The packages `interpreter` sees: its own site directories, and the
    /// base interpreter's when it is a virtual environment with system
    /// site packages (or when `with_system_site` asks for them).
    pub fn visible_packages(
        &self,
        interpreter: &Interpreter,
        with_system_site: bool,
    ) -> Vec<&PythonPackage> {
        let mut dirs: Vec<&str> = interpreter.site_dirs.iter().map(String::as_str).collect();
        if interpreter.kind == InterpreterKind::VirtualEnvironment
            && (with_system_site || interpreter.system_site_packages == Some(true))
            && let Some(base) = self.python_interpreters.iter().find(|b| {
                b.kind == InterpreterKind::System
                    && b.version == interpreter.version
                    && interpreter.home.as_deref().is_some_and(|h| {
                        let h = h.trim_end_matches('/');
                        b.path.rsplit_once('/').is_some_and(|(d, _)| d == h)
                            || b.aliases
                                .iter()
                                .any(|a| a.rsplit_once('/').is_some_and(|(d, _)| d == h))
                    })
            })
        {
            dirs.extend(base.site_dirs.iter().map(String::as_str));
        }
        // The first directory on the path wins for a name.
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        for d in dirs {
            for p in self.python_packages.iter().filter(|p| p.location == d) {
                if seen.insert(p.name.as_str()) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The packages already installed where a stack for Python `X.Y` goes
    /// in `mode`.
    pub fn installed(&self, python_xy: &str, mode: ImageMode) -> Vec<&PythonPackage> {
        let Some(i) = self.interpreter_for(python_xy) else {
            return Vec::new();
        };
        match mode {
            ImageMode::NewVenv => Vec::new(),
            ImageMode::SystemSitePackages => self.visible_packages(i, true),
            ImageMode::IntoImage => self.visible_packages(i, false),
        }
    }

    /// `env` completed with what the image tells: its name, OS, Python
    /// (when the environment left it to the default), CUDA, cuDNN and
    /// glibc; and warnings about disagreements.
    pub fn complete(&self, env: TargetEnvironment) -> (TargetEnvironment, Vec<String>) {
        let mut env = env;
        let mut warnings = Vec::new();
        if env.base_image.is_none() {
            env.base_image.clone_from(&self.reference);
        }
        if let Some(os) = &self.os {
            if env.os_name.is_none() {
                env.os_name.clone_from(&os.id);
            }
            if env.os_version.is_none() {
                env.os_version.clone_from(&os.version_id);
            }
        }
        let python_defaulted = env
            .defaulted
            .iter()
            .position(|d| d.starts_with("python_version:"));
        let has_target = self.interpreter_for(&env.python_version);
        match (has_target, python_defaulted, self.main_interpreter()) {
            (Some(i), defaulted, _) => {
                if let Some(full) = &i.full_version {
                    env.python_full_version.clone_from(full);
                    env.python_patch_known = true;
                }
                if let Some(at) = defaulted {
                    env.defaulted[at] = format!(
                        "python_version: {} (the base image's {})",
                        i.version, i.path
                    );
                }
            }
            (None, Some(at), Some(i)) => {
                env.python_version.clone_from(&i.version);
                env.python_full_version = i
                    .full_version
                    .clone()
                    .unwrap_or_else(|| format!("{}.0", i.version));
                env.defaulted[at] = format!(
                    "python_version: {} (the base image's {})",
                    i.version, i.path
                );
            }
            (None, None, Some(_)) => warnings.push(format!(
                "the base image has Python {} but the stack is resolved for Python {}",
                self.python_interpreters
                    .iter()
                    .map(|i| i.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                env.python_version
            )),
            (None, _, None) => {}
        }
        if env.cuda_version.is_none() {
            env.cuda_version.clone_from(&self.cuda_version);
        }
        if env.cudnn_version.is_none() {
            env.cudnn_version.clone_from(&self.cudnn_version);
        }
        if self.glibc.is_some() {
            env.glibc.clone_from(&self.glibc);
        }
        if !self.rpm.readable
            && let Some(note) = &self.rpm.note
        {
            warnings.push(format!(
                "base image: {note}; prescriptions that check RPM packages are not applied"
            ));
        }
        (env, warnings)
    }

    /// A human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18} {v}\n"));
        line(
            "image",
            format!(
                "{} ({}, {} layers)",
                self.reference.as_deref().unwrap_or("(no name)"),
                self.kind,
                self.layers
            ),
        );
        if let Some(a) = &self.architecture {
            line("architecture", a.clone());
        }
        line(
            "os",
            self.os.as_ref().map_or("unknown".into(), |o| {
                o.pretty_name.clone().unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        o.id.as_deref().unwrap_or("?"),
                        o.version_id.as_deref().unwrap_or("")
                    )
                })
            }),
        );
        line(
            "rpm packages",
            match (&self.rpm.note, self.rpm.packages.len()) {
                (Some(note), _) => format!("not readable: {note}"),
                (None, n) => n.to_string(),
            },
        );
        line("deb packages", self.deb_packages.len().to_string());
        line(
            "python",
            if self.python_interpreters.is_empty() {
                "none".into()
            } else {
                self.python_interpreters
                    .iter()
                    .map(|i| {
                        let aliases = if i.aliases.is_empty() {
                            String::new()
                        } else {
                            format!("; also {}", i.aliases.join(", "))
                        };
                        format!(
                            "{} ({}; {}{aliases})",
                            i.path,
                            i.full_version.as_ref().unwrap_or(&i.version),
                            i.describe()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n                   ")
            },
        );
        let mut by_site: BTreeMap<&str, usize> = BTreeMap::new();
        for p in &self.python_packages {
            *by_site.entry(&p.location).or_default() += 1;
        }
        for (site, n) in by_site {
            line("python packages", format!("{n} in {site}"));
        }
        line(
            "glibc",
            self.glibc.clone().unwrap_or_else(|| "unknown".into()),
        );
        line("abi symbols", self.abi.len().to_string());
        if let Some(c) = &self.cuda_version {
            line("cuda", c.clone());
        }
        if let Some(c) = &self.cudnn_version {
            line("cudnn", c.clone());
        }
        out
    }
}

/// Where saved analyses live: `$THOTH_DATA_DIR/images`, else
/// `$XDG_DATA_HOME/thoth-rs/images`, else `~/.local/share/thoth-rs/images`.
pub fn store_dir() -> PathBuf {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("THOTH_DATA_DIR") {
        return PathBuf::from(d).join("images");
    }
    if let Some(d) = nonempty("XDG_DATA_HOME") {
        return PathBuf::from(d).join("thoth-rs/images");
    }
    let home = nonempty("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/share/thoth-rs/images")
}

/// File name of a saved analysis: the name with every character outside
/// `[A-Za-z0-9._-]` percent-encoded.
fn stored_file(name: &str) -> PathBuf {
    let mut file = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') && !file.is_empty() {
            file.push(char::from(b));
        } else {
            file.push_str(&format!("%{b:02X}"));
        }
    }
    store_dir().join(format!("{file}.json"))
}

/// Save `analysis` under `name` (atomically); returns the file written.
pub fn save(name: &str, analysis: &ImageAnalysis) -> Result<PathBuf, ImageError> {
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(ImageError::new(
            name,
            "an image name is `name[:tag]` without spaces",
        ));
    }
    let path = stored_file(name);
    let mut analysis = analysis.clone();
    analysis.reference = Some(name.to_string());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ImageError::new(dir.display(), e))?;
    }
    let text = serde_json::to_string_pretty(&analysis).map_err(|e| ImageError::new(name, e))?;
    crate::write::write_atomic(&path, format!("{text}\n").as_bytes())
        .map_err(|e| ImageError::new(path.display(), e))?;
    Ok(path)
}

/// The analysis saved under `name`, if any.
pub fn load_saved(name: &str) -> Result<Option<ImageAnalysis>, ImageError> {
    let path = stored_file(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::new(path.display(), e)),
    };
    let analysis: ImageAnalysis =
        serde_json::from_str(&text).map_err(|e| ImageError::new(path.display(), e))?;
    if analysis.format_version != FORMAT_VERSION {
        return Err(ImageError::new(
            path.display(),
            format!(
                "saved with format {} (this thoth-rs reads {FORMAT_VERSION}); inspect the image again",
                analysis.format_version
            ),
        ));
    }
    Ok(Some(analysis))
}

/// The base image `spec` names: an image path (relative to `base`) is
/// inspected; otherwise the analysis saved under that name is loaded.
/// `Ok(None)` when it is neither.
pub fn open_base_image(spec: &str, base: &Path) -> Result<Option<ImageAnalysis>, ImageError> {
    let path = base.join(spec);
    if path.exists() {
        return inspect(&path).map(Some);
    }
    load_saved(spec)
}
