//! Dependency metadata of a release that exists only as a source archive,
//! read without building it. In order of trust:
//!
//! 1. `PKG-INFO` at the archive's top, when its Metadata-Version is 2.2 or
//!    newer and it does not declare `Requires-Dist` dynamic (PEP 643), or
//!    when the archive has no `setup.py` (a declarative build backend wrote
//!    it, so it cannot differ from what a build produces);
//! 2. setuptools' `*.egg-info/requires.txt` (an egg-info directory without
//!    one means no dependencies);
//! 3. a static `pyproject.toml` `[project]` table whose `dependencies` are
//!    not listed in `dynamic`;
//! 4. `setup.py` read without running it, when its dependency arguments are
//!    literals ([`super::setup_py`]), with `setup.cfg`'s declarative
//!    options for what it does not give.
//!
//! Otherwise the metadata is unavailable, and the reason says why. Archives
//! are read as a stream; reading stops as soon as a trusted `PKG-INFO` is
//! seen, and never goes past [`SDIST_CAP`] compressed bytes.

use std::io::Read;

use crate::record::Dependency;
use crate::record::metadata::{CoreMetadata, dependency_from_requirement, parse_metadata};

/// Compressed bytes of a source archive read at most (64 MiB).
pub const SDIST_CAP: u64 = 64 << 20;
/// Largest single file taken out of an archive (1 MiB).
pub const FILE_CAP: u64 = 1 << 20;

/// The files of a source archive that can say what it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdistFiles {
    /// `<top>/PKG-INFO`.
    pub pkg_info: Option<String>,
    /// `*.egg-info/requires.txt`.
    pub requires_txt: Option<String>,
    /// An `*.egg-info/` directory was seen.
    pub egg_info: bool,
    /// `<top>/pyproject.toml`.
    pub pyproject: Option<String>,
    /// `<top>/setup.py` exists.
    pub setup_py: bool,
    /// Its text.
    pub setup_py_text: Option<String>,
    /// `<top>/setup.cfg`.
    pub setup_cfg: Option<String>,
}

/// Which of the wanted files a path inside the archive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Top-level PKG-INFO.
    PkgInfo,
    /// egg-info requires.txt.
    RequiresTxt,
    /// Any other egg-info file (its presence matters).
    EggInfo,
    /// Top-level pyproject.toml.
    Pyproject,
    /// Top-level setup.py.
    SetupPy,
    /// Top-level setup.cfg.
    SetupCfg,
}

/// Classify a path (`top/…`) inside a source archive.
pub fn wanted(path: &str) -> Option<Wanted> {
    let path = path.trim_start_matches("./");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        [_, "PKG-INFO"] => Some(Wanted::PkgInfo),
        [_, "pyproject.toml"] => Some(Wanted::Pyproject),
        [_, "setup.py"] => Some(Wanted::SetupPy),
        [_, "setup.cfg"] => Some(Wanted::SetupCfg),
        [_, dir, file] | [_, _, dir, file] if dir.ends_with(".egg-info") => {
            Some(if *file == "requires.txt" {
                Wanted::RequiresTxt
            } else {
                Wanted::EggInfo
            })
        }
        _ => None,
    }
}

impl SdistFiles {
    /// Record a file's content (`None` when only its presence matters).
    pub fn add(&mut self, kind: Wanted, content: Option<String>) {
        match kind {
            Wanted::PkgInfo => self.pkg_info = content.or(self.pkg_info.take()),
            Wanted::RequiresTxt => {
                self.egg_info = true;
                self.requires_txt = content.or(self.requires_txt.take());
            }
            Wanted::EggInfo => self.egg_info = true,
            Wanted::Pyproject => self.pyproject = content.or(self.pyproject.take()),
            Wanted::SetupPy => {
                self.setup_py = true;
                self.setup_py_text = content.or(self.setup_py_text.take());
            }
            Wanted::SetupCfg => self.setup_cfg = content.or(self.setup_cfg.take()),
        }
    }

    /// Whether the files read so far settle the question (a trusted
    /// PKG-INFO), so reading can stop.
    pub fn settled(&self) -> bool {
        self.pkg_info.as_deref().is_some_and(static_pkg_info)
    }
}

/// Which way the metadata of a source archive was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdistSource {
    /// PKG-INFO.
    PkgInfo,
    /// egg-info/requires.txt.
    EggInfo,
    /// pyproject.toml.
    Pyproject,
    /// setup.py (and setup.cfg) read without running them.
    SetupPy,
}

/// Metadata-Version of a PKG-INFO text as (major, minor).
fn metadata_version(text: &str) -> Option<(u32, u32)> {
    let line = text
        .lines()
        .take_while(|l| !l.is_empty())
        .find(|l| l.to_ascii_lowercase().starts_with("metadata-version:"))?;
    let v = line.split_once(':')?.1.trim();
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The `Dynamic:` fields of a PKG-INFO, lower-cased.
fn dynamic_fields(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("dynamic")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .collect()
}

fn static_pkg_info(text: &str) -> bool {
    metadata_version(text).is_some_and(|v| v >= (2, 2))
        && !dynamic_fields(text)
            .iter()
            .any(|f| f == "requires-dist" || f == "provides-extra")
}

/// Why a source archive yields no dependency metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdistError {
    /// Its pyproject.toml is not TOML (the parser's message).
    #[error("its pyproject.toml cannot be read ({0})")]
    Pyproject(String),
    /// setup.py (or setup.cfg) computes a dependency argument.
    #[error(
        "it exists only as a source archive whose dependencies are dynamic: {0} \
         (no Metadata 2.2 PKG-INFO, egg-info or static pyproject.toml either)"
    )]
    DynamicSetup(DynamicArgument),
    /// PKG-INFO older than Metadata 2.2 beside a setup.py that could not
    /// be read (its version, or `unknown`).
    #[error(
        "it exists only as a source archive whose dependencies are dynamic \
         (PKG-INFO of Metadata-Version {0} with setup.py, no egg-info, \
         no static pyproject.toml dependencies)"
    )]
    DynamicPkgInfo(String),
    /// Nothing that declares dependencies.
    #[error(
        "it exists only as a source archive without PKG-INFO, egg-info or \
         static pyproject.toml dependencies"
    )]
    Nothing,
    /// The archive is not a tar archive (the reader's message).
    #[error("not a readable tar archive: {0}")]
    NotTar(String),
    /// The archive breaks off or is corrupt (the reader's message).
    #[error("damaged tar archive: {0}")]
    Damaged(String),
    /// A metadata file in it is over the size cap (its path).
    #[error("{0} is larger than {FILE_CAP} bytes")]
    TooLarge(String),
}

/// A `setup.py` argument that cannot be read, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicArgument {
    /// The argument, when one argument is at fault.
    pub argument: Option<&'static str>,
    /// Why.
    pub why: super::setup_py::Dynamic,
}

impl std::fmt::Display for DynamicArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.argument {
            Some(argument) => write!(f, "{argument}: {}", self.why),
            None => write!(f, "{}", self.why),
        }
    }
}

impl From<super::setup_py::Dynamic> for DynamicArgument {
    fn from(why: super::setup_py::Dynamic) -> Self {
        DynamicArgument {
            argument: None,
            why,
        }
    }
}

/// The metadata the files give, or why they give none.
pub fn metadata_from(files: &SdistFiles) -> Result<(CoreMetadata, SdistSource), SdistError> {
    let pkg_info = files.pkg_info.as_deref().map(|t| (parse_metadata(t), t));
    if let Some((meta, text)) = &pkg_info
        && (static_pkg_info(text) || !files.setup_py && metadata_version(text).is_some())
    {
        return Ok((meta.clone(), SdistSource::PkgInfo));
    }
    let requires_python = pkg_info
        .as_ref()
        .and_then(|(m, _)| m.requires_python.clone());
    if files.egg_info {
        let (dependencies, provides_extras, skipped) =
            parse_requires_txt(files.requires_txt.as_deref().unwrap_or(""));
        return Ok((
            CoreMetadata {
                name: pkg_info.as_ref().and_then(|(m, _)| m.name.clone()),
                version: pkg_info.as_ref().and_then(|(m, _)| m.version.clone()),
                requires_python,
                dependencies,
                provides_extras,
                skipped,
            },
            SdistSource::EggInfo,
        ));
    }
    if let Some(text) = &files.pyproject {
        match static_pyproject(text) {
            Ok(Some(mut meta)) => {
                meta.requires_python = meta.requires_python.or(requires_python);
                return Ok((meta, SdistSource::Pyproject));
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    let mut why_dynamic = None;
    if let Some(text) = &files.setup_py_text {
        match from_setup_py(text, files.setup_cfg.as_deref()) {
            Ok(mut meta) => {
                meta.name = pkg_info.as_ref().and_then(|(m, _)| m.name.clone());
                meta.version = pkg_info.as_ref().and_then(|(m, _)| m.version.clone());
                meta.requires_python = meta.requires_python.or(requires_python);
                return Ok((meta, SdistSource::SetupPy));
            }
            Err(why) => why_dynamic = Some(why),
        }
    }
    if let Some(why) = why_dynamic {
        return Err(SdistError::DynamicSetup(why));
    }
    Err(match &pkg_info {
        Some((_, text)) => SdistError::DynamicPkgInfo(
            metadata_version(text)
                .map_or_else(|| "unknown".to_string(), |(a, b)| format!("{a}.{b}")),
        ),
        None => SdistError::Nothing,
    })
}

/// Dependencies from `setup.py`'s literal arguments, completed by
/// `setup.cfg`; `Err` says why they cannot be read.
fn from_setup_py(setup_py: &str, setup_cfg: Option<&str>) -> Result<CoreMetadata, DynamicArgument> {
    use super::setup_py::{Found, read, read_cfg};
    let args = read(setup_py)?;
    let cfg = match setup_cfg {
        Some(text) => Some(read_cfg(text)?),
        None => None,
    };
    let pick = |own: Found<Vec<String>>, from_cfg: Option<Found<Vec<String>>>| match own {
        Found::Literal(l) => Ok(l),
        Found::Dynamic(why) => Err(DynamicArgument {
            argument: Some("install_requires"),
            why,
        }),
        Found::Absent => match from_cfg {
            Some(Found::Literal(l)) => Ok(l),
            _ => Ok(Vec::new()),
        },
    };
    let install = pick(
        args.install_requires,
        cfg.as_ref().map(|c| c.install_requires.clone()),
    )?;
    let extras = match args.extras_require {
        Found::Literal(e) => e,
        Found::Dynamic(why) => {
            return Err(DynamicArgument {
                argument: Some("extras_require"),
                why,
            });
        }
        Found::Absent => match cfg.as_ref().map(|c| c.extras_require.clone()) {
            Some(Found::Literal(e)) => e,
            _ => Vec::new(),
        },
    };
    let requires_python = match args.python_requires {
        Found::Literal(s) => Some(s),
        _ => match cfg.map(|c| c.python_requires) {
            Some(Found::Literal(s)) => Some(s),
            _ => None,
        },
    };
    let mut meta = CoreMetadata {
        requires_python,
        ..CoreMetadata::default()
    };
    for req in install {
        match dependency_from_requirement(&req) {
            Some(d) => meta.dependencies.push(d),
            None => meta.skipped.push(req),
        }
    }
    for (key, reqs) in extras {
        // setuptools allows `extra:marker` keys.
        let (extra, marker) = match key.split_once(':') {
            Some((e, m)) => (e.trim(), Some(m.trim())),
            None => (key.trim(), None),
        };
        let Ok(extra) = crate::python::parse_extra(extra) else {
            continue;
        };
        let extra = extra.to_string();
        if !meta.provides_extras.contains(&extra) {
            meta.provides_extras.push(extra.clone());
        }
        for req in reqs {
            let (r, own) = match req.split_once(';') {
                Some((r, m)) => (r.trim().to_string(), Some(m.trim().to_string())),
                None => (req.trim().to_string(), None),
            };
            let clause = match (own, marker) {
                (Some(o), Some(m)) => format!("({o}) and ({m}) and extra == \"{extra}\""),
                (Some(o), None) => format!("({o}) and extra == \"{extra}\""),
                (None, Some(m)) => format!("({m}) and extra == \"{extra}\""),
                (None, None) => format!("extra == \"{extra}\""),
            };
            match dependency_from_requirement(&format!("{r} ; {clause}")) {
                Some(d) => meta.dependencies.push(d),
                None => meta.skipped.push(req),
            }
        }
    }
    Ok(meta)
}

/// Parse setuptools' `requires.txt`: requirement lines under sections
/// `[extra]`, `[extra:marker]` or `[:marker]`.
pub fn parse_requires_txt(text: &str) -> (Vec<Dependency>, Vec<String>, Vec<String>) {
    let mut deps = Vec::new();
    let mut extras: Vec<String> = Vec::new();
    let mut skipped = Vec::new();
    let mut section: (Option<String>, Option<String>) = (None, None);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (extra, marker) = match head.split_once(':') {
                Some((e, m)) => (e.trim(), Some(m.trim())),
                None => (head.trim(), None),
            };
            let extra = (!extra.is_empty())
                .then(|| {
                    crate::python::parse_extra(extra)
                        .ok()
                        .map(|e| e.to_string())
                })
                .flatten();
            if let Some(e) = &extra
                && !extras.contains(e)
            {
                extras.push(e.clone());
            }
            section = (extra, marker.filter(|m| !m.is_empty()).map(str::to_string));
            continue;
        }
        let marker = match (&section.0, &section.1) {
            (None, None) => None,
            (None, Some(m)) => Some(m.clone()),
            (Some(e), None) => Some(format!("extra == \"{e}\"")),
            (Some(e), Some(m)) => Some(format!("({m}) and extra == \"{e}\"")),
        };
        let (req, own) = match line.split_once(';') {
            Some((r, m)) => (r.trim(), Some(m.trim())),
            None => (line, None),
        };
        let text = match (marker, own) {
            (None, None) => req.to_string(),
            (Some(m), None) => format!("{req} ; {m}"),
            (None, Some(m)) => format!("{req} ; {m}"),
            (Some(m), Some(o)) => format!("{req} ; ({o}) and ({m})"),
        };
        match dependency_from_requirement(&text) {
            Some(d) => deps.push(d),
            None => skipped.push(line.to_string()),
        }
    }
    (deps, extras, skipped)
}

/// `[project]` of a pyproject.toml when its dependencies are static;
/// `Ok(None)` when there is no `[project]` or its dependencies are dynamic.
fn static_pyproject(text: &str) -> Result<Option<CoreMetadata>, SdistError> {
    let doc: toml::Table =
        toml::from_str(text).map_err(|e| SdistError::Pyproject(e.message().to_string()))?;
    let Some(project) = doc.get("project").and_then(|p| p.as_table()) else {
        return Ok(None);
    };
    let dynamic: Vec<&str> = project
        .get("dynamic")
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    if dynamic
        .iter()
        .any(|d| *d == "dependencies" || *d == "optional-dependencies")
    {
        return Ok(None);
    }
    let mut meta = CoreMetadata {
        name: project
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        version: project
            .get("version")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        requires_python: project
            .get("requires-python")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        ..CoreMetadata::default()
    };
    for req in project
        .get("dependencies")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        match dependency_from_requirement(req) {
            Some(d) => meta.dependencies.push(d),
            None => meta.skipped.push(req.to_string()),
        }
    }
    if let Some(optional) = project
        .get("optional-dependencies")
        .and_then(|d| d.as_table())
    {
        for (extra, list) in optional {
            let Ok(extra) = crate::python::parse_extra(extra) else {
                continue;
            };
            let extra = extra.to_string();
            meta.provides_extras.push(extra.clone());
            for req in list
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
            {
                let (r, own) = match req.split_once(';') {
                    Some((r, m)) => (r.trim(), Some(m.trim())),
                    None => (req.trim(), None),
                };
                let text = match own {
                    Some(m) => format!("{r} ; ({m}) and extra == \"{extra}\""),
                    None => format!("{r} ; extra == \"{extra}\""),
                };
                match dependency_from_requirement(&text) {
                    Some(d) => meta.dependencies.push(d),
                    None => meta.skipped.push(req.to_string()),
                }
            }
        }
    }
    Ok(Some(meta))
}

/// Read the wanted files of a tar archive (pass a gzip decoder for
/// `.tar.gz`), stopping early once settled. The caller bounds what
/// `reader` yields.
pub fn scan_tar<R: Read>(reader: R) -> Result<SdistFiles, SdistError> {
    let mut archive = tar::Archive::new(reader);
    let mut files = SdistFiles::default();
    let entries = archive
        .entries()
        .map_err(|e| SdistError::NotTar(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| SdistError::Damaged(e.to_string()))?;
        let path = entry
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(kind) = wanted(&path) else {
            continue;
        };
        let content = match kind {
            Wanted::PkgInfo
            | Wanted::RequiresTxt
            | Wanted::Pyproject
            | Wanted::SetupPy
            | Wanted::SetupCfg => {
                let mut buf = Vec::new();
                (&mut entry)
                    .take(FILE_CAP + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| SdistError::Damaged(e.to_string()))?;
                if buf.len() as u64 > FILE_CAP {
                    return Err(SdistError::TooLarge(path));
                }
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            Wanted::EggInfo => None,
        };
        files.add(kind, content);
        if files.settled() {
            break;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(wanted("demo-1.0/PKG-INFO"), Some(Wanted::PkgInfo));
        assert_eq!(
            wanted("demo-1.0/demo.egg-info/requires.txt"),
            Some(Wanted::RequiresTxt)
        );
        assert_eq!(
            wanted("demo-1.0/src/demo.egg-info/requires.txt"),
            Some(Wanted::RequiresTxt)
        );
        assert_eq!(
            wanted("demo-1.0/demo.egg-info/PKG-INFO"),
            Some(Wanted::EggInfo)
        );
        assert_eq!(wanted("demo-1.0/docs/PKG-INFO"), None);
        assert_eq!(wanted("./demo-1.0/setup.py"), Some(Wanted::SetupPy));
    }

    #[test]
    fn requires_txt_sections() {
        let (deps, extras, skipped) = parse_requires_txt(
            "text-unidecode>=1.3\n\n[:python_version < \"3.8\"]\nimportlib-metadata\n\n[unidecode]\nUnidecode>=1.1.1\n\n[socks:sys_platform == \"win32\"]\nwin-inet-pton\n",
        );
        assert!(skipped.is_empty());
        assert_eq!(extras, ["unidecode", "socks"]);
        assert_eq!(deps.len(), 4);
        assert_eq!(deps[0].name, "text-unidecode");
        assert_eq!(deps[0].marker, None);
        assert_eq!(deps[1].marker.as_deref(), Some("python_version < \"3.8\""));
        assert_eq!(deps[2].extra.as_deref(), Some("unidecode"));
        assert_eq!(deps[3].extra.as_deref(), Some("socks"));
        assert!(deps[3].marker.as_deref().unwrap().contains("win32"));
    }

    #[test]
    fn trust_order() {
        let old = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n\n";
        let dynamic = "Metadata-Version: 2.2\nName: demo\nVersion: 1.0\nDynamic: Requires-Dist\n\n";
        let fresh = "Metadata-Version: 2.2\nName: demo\nVersion: 1.0\nRequires-Dist: idna\n\n";
        // A trusted PKG-INFO settles it.
        let files = SdistFiles {
            pkg_info: Some(fresh.into()),
            setup_py: true,
            ..SdistFiles::default()
        };
        assert!(files.settled());
        let (m, how) = metadata_from(&files).unwrap();
        assert_eq!(how, SdistSource::PkgInfo);
        assert_eq!(m.dependencies[0].name, "idna");
        // Dynamic Requires-Dist with setup.py and nothing else: unavailable.
        let files = SdistFiles {
            pkg_info: Some(dynamic.into()),
            setup_py: true,
            ..SdistFiles::default()
        };
        let why = metadata_from(&files).unwrap_err();
        assert!(matches!(why, SdistError::DynamicPkgInfo(_)), "{why}");
        // An egg-info without requires.txt: no dependencies.
        let files = SdistFiles {
            pkg_info: Some(old.into()),
            egg_info: true,
            setup_py: true,
            ..SdistFiles::default()
        };
        let (m, how) = metadata_from(&files).unwrap();
        assert_eq!(how, SdistSource::EggInfo);
        assert!(m.dependencies.is_empty());
        // Static pyproject.toml.
        let files = SdistFiles {
            pkg_info: Some(old.into()),
            setup_py: true,
            pyproject: Some(
                "[project]\nname = \"demo\"\nversion = \"1.0\"\ndependencies = [\"attrs>=22\"]\n[project.optional-dependencies]\ntest = [\"pytest; python_version >= '3.8'\"]\n".into(),
            ),
            ..SdistFiles::default()
        };
        let (m, how) = metadata_from(&files).unwrap();
        assert_eq!(how, SdistSource::Pyproject);
        assert_eq!(m.dependencies.len(), 2);
        assert_eq!(m.dependencies[1].extra.as_deref(), Some("test"));
        assert_eq!(m.provides_extras, ["test"]);
        // No setup.py: a declarative backend wrote PKG-INFO.
        let files = SdistFiles {
            pkg_info: Some(old.into()),
            ..SdistFiles::default()
        };
        assert_eq!(metadata_from(&files).unwrap().1, SdistSource::PkgInfo);
    }
}
