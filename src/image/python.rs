//! Python in an image: interpreters, the environments they run in, and the
//! packages each environment sees.
//!
//! Paths are compared after resolving symbolic links inside the image
//! ([`Root::canonical`]), so a merged-/usr image (`/bin` → `usr/bin`, `/lib`
//! → `usr/lib`) reports each interpreter and package once, under its real
//! path, with the other paths as aliases. An interpreter is one of:
//! - a **virtual environment** (`pyvenv.cfg` at its prefix), with or without
//!   the system site packages;
//! - a **system** install, **externally managed** when its standard library
//!   carries PEP 668's `EXTERNALLY-MANAGED` (distribution Pythons: nobody
//!   installs into them with pip);
//! - a plain install (a Python built into `/usr/local` or `/opt`).
//!
//! Packages are attributed to their site directory and, where dpkg says
//! so, to the distribution package that owns them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::tree::Root;
use super::{DebPackage, RpmPackage};

/// What kind of Python an interpreter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterpreterKind {
    /// Installed into the image's own prefix (`/usr`, `/usr/local`, `/opt/…`).
    #[default]
    System,
    /// A virtual environment (`pyvenv.cfg`).
    VirtualEnvironment,
}

/// A Python interpreter found in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interpreter {
    /// Absolute path in the image (its real path; for a virtual
    /// environment, the environment's own `bin/pythonX.Y`).
    pub path: String,
    /// `X.Y`.
    pub version: String,
    /// `X.Y.Z` when the image says (its `PYTHON_VERSION` variable, a
    /// virtual environment's `pyvenv.cfg`, the distribution's package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_version: Option<String>,
    /// System install or virtual environment.
    #[serde(default)]
    pub kind: InterpreterKind,
    /// The installation prefix (`/usr`, `/usr/local`, `/opt/venv`).
    #[serde(default)]
    pub prefix: String,
    /// PEP 668: the distribution manages this interpreter's packages.
    #[serde(default)]
    pub externally_managed: bool,
    /// A virtual environment's `include-system-site-packages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_site_packages: Option<bool>,
    /// A virtual environment's base interpreter directory (`home`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Other paths of the image that lead to the same interpreter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Site directories of its own (real paths).
    #[serde(default)]
    pub site_dirs: Vec<String>,
}

impl Interpreter {
    /// `system`, `system, externally managed`, `virtual environment with
    /// system site packages`…
    pub fn describe(&self) -> String {
        match (
            self.kind,
            self.externally_managed,
            self.system_site_packages,
        ) {
            (InterpreterKind::VirtualEnvironment, _, Some(true)) => {
                "virtual environment with system site packages".into()
            }
            (InterpreterKind::VirtualEnvironment, _, _) => "virtual environment".into(),
            (InterpreterKind::System, true, _) => "system, externally managed (PEP 668)".into(),
            (InterpreterKind::System, false, _) => "system".into(),
        }
    }
}

/// A Python package installed in the image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PythonPackage {
    /// Normalised name.
    pub name: String,
    /// Version as recorded.
    pub version: String,
    /// The site directory holding it (real path).
    pub location: String,
    /// `dist-info` or `egg-info`.
    pub metadata: String,
    /// Its requirements as installed (`Requires-Dist`, or an egg-info's
    /// `requires.txt` in the same form): distributions patch them, so
    /// these, not the index's, hold for the installed copy.
    #[serde(default)]
    pub requires: Vec<String>,
    /// The distribution package that installed it (dpkg or RPM), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distro_package: Option<String>,
}

/// Directories that may hold `bin/` and `lib/` of a Python installation or
/// virtual environment, as found (not yet canonical).
fn prefixes(root: &dyn Root) -> Vec<String> {
    let mut out = vec!["usr".to_string(), "usr/local".to_string(), String::new()];
    for name in root.list("opt") {
        let base = format!("opt/{name}");
        out.push(base.clone());
        for sub in root.list(&base) {
            out.push(format!("{base}/{sub}"));
        }
    }
    for home in root.list("home") {
        out.push(format!("home/{home}/.local"));
    }
    out.push("root/.local".into());
    out
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_string()
    } else {
        format!("{prefix}/{rest}")
    }
}

/// `pythonX.Y` → `X.Y`.
pub fn python_xy(name: &str) -> Option<&str> {
    let v = name.strip_prefix("python")?;
    let (major, minor) = v.split_once('.')?;
    (!major.is_empty()
        && !minor.is_empty()
        && major.chars().all(|c| c.is_ascii_digit())
        && minor.chars().all(|c| c.is_ascii_digit()))
    .then_some(v)
}

/// `key = value` lines of a `pyvenv.cfg`.
fn pyvenv_cfg(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// The upstream part of a distribution package version
/// (`3.11.2-6+deb12u8` → `3.11.2`, `1:2.39.5-0` → `2.39.5`).
fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.split(['-', '+', '~']).next().unwrap_or(v)
}

/// Full version of a distribution's Python `X.Y`, from its package.
fn distro_python_version(xy: &str, deb: &[DebPackage], rpm: &[RpmPackage]) -> Option<String> {
    let names = [
        format!("python{xy}-minimal"),
        format!("python{xy}"),
        format!("libpython{xy}-minimal"),
    ];
    let from_deb = names
        .iter()
        .find_map(|n| deb.iter().find(|p| &p.name == n))
        .map(|p| upstream(&p.version).to_string());
    let from_rpm = || {
        rpm.iter()
            .find(|p| p.name == format!("python{xy}") || p.name == "python3")
            .map(|p| p.version.clone())
    };
    from_deb
        .or_else(from_rpm)
        .filter(|v| v.strip_prefix(xy).is_some_and(|r| r.starts_with('.')))
}

/// The interpreter `bin/NAME` (Python `xy`) of the virtual environment at
/// `real_prefix` whose pyvenv.cfg says `cfg`, with its grouping key.
fn venv_interpreter(
    real_prefix: &str,
    name: &str,
    xy: &str,
    cfg: &BTreeMap<String, String>,
) -> (String, Interpreter) {
    let path = format!("/{}", join(real_prefix, &format!("bin/{name}")));
    let full = cfg
        .get("version")
        .or_else(|| cfg.get("version_info"))
        .filter(|v| v.strip_prefix(xy).is_some_and(|r| r.starts_with('.')))
        .map(|v| v.split('.').take(3).collect::<Vec<_>>().join("."));
    (
        format!("venv:{path}"),
        Interpreter {
            path,
            version: xy.to_string(),
            full_version: full,
            kind: InterpreterKind::VirtualEnvironment,
            prefix: format!("/{real_prefix}"),
            externally_managed: false,
            system_site_packages: Some(
                cfg.get("include-system-site-packages")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ),
            home: cfg.get("home").cloned(),
            aliases: Vec::new(),
            site_dirs: Vec::new(),
        },
    )
}

/// Python interpreters (`…/bin/pythonX.Y`), each once.
pub fn interpreters(
    root: &dyn Root,
    env: &BTreeMap<String, String>,
    deb: &[DebPackage],
    rpm: &[RpmPackage],
) -> Vec<Interpreter> {
    // Group every path found by what it is: a virtual environment's
    // interpreter by its environment, any other by its real file.
    let mut groups: BTreeMap<String, (Interpreter, BTreeSet<String>)> = BTreeMap::new();
    for prefix in prefixes(root) {
        let Some(real_prefix) = root.canonical(&prefix) else {
            continue;
        };
        let bin = join(&prefix, "bin");
        let cfg = root
            .read(&join(&real_prefix, "pyvenv.cfg"))
            .map(|b| pyvenv_cfg(&String::from_utf8_lossy(&b)));
        let listed = root.list(&bin);
        let mut found_names: Vec<(String, String)> = listed
            .iter()
            .filter_map(|n| python_xy(n).map(|xy| (n.clone(), xy.to_string())))
            .collect();
        // A virtual environment may only have `python3` (a link to its
        // base): its version is in pyvenv.cfg.
        if found_names.is_empty()
            && listed.iter().any(|n| n == "python3")
            && let Some(xy) = cfg.as_ref().and_then(|c| {
                c.get("version")
                    .or_else(|| c.get("version_info"))
                    .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
            })
        {
            found_names.push(("python3".to_string(), xy));
        }
        for (name, xy) in found_names {
            let xy = xy.as_str();
            let found = format!("/{bin}/{name}");
            let (key, interpreter) = match &cfg {
                Some(cfg) => venv_interpreter(&real_prefix, &name, xy, cfg),
                None => {
                    let Some(real) = root.canonical(&join(&bin, &name)) else {
                        continue;
                    };
                    let full = env
                        .get("PYTHON_VERSION")
                        .filter(|v| v.strip_prefix(xy).is_some_and(|r| r.starts_with('.')))
                        .cloned()
                        .or_else(|| {
                            (real_prefix == "usr")
                                .then(|| distro_python_version(xy, deb, rpm))
                                .flatten()
                        });
                    let stdlib = join(&real_prefix, &format!("lib/python{xy}"));
                    (
                        format!("file:{real}"),
                        Interpreter {
                            path: format!("/{real}"),
                            version: xy.to_string(),
                            full_version: full,
                            kind: InterpreterKind::System,
                            prefix: format!("/{real_prefix}"),
                            externally_managed: root
                                .exists(&format!("{stdlib}/EXTERNALLY-MANAGED")),
                            system_site_packages: None,
                            home: None,
                            aliases: Vec::new(),
                            site_dirs: Vec::new(),
                        },
                    )
                }
            };
            let entry = groups
                .entry(key)
                .or_insert_with(|| (interpreter, BTreeSet::new()));
            entry.1.insert(found);
        }
    }
    let mut out: Vec<Interpreter> = groups
        .into_values()
        .map(|(mut i, found)| {
            i.aliases = found.into_iter().filter(|p| *p != i.path).collect();
            i
        })
        .collect();
    // The real install of a prefix: a `pythonX.Y` that is a link to
    // another prefix's interpreter (`/usr/local/bin/python3.11` →
    // `/usr/bin/python3.11`) is that interpreter, already grouped.
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// PEP 503 normalised name.
pub fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// `Name`, `Version` and `Requires-Dist` from core metadata headers.
fn headers(data: &[u8]) -> Option<(String, String, Vec<String>)> {
    let text = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    let mut requires = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "name" => name = Some(v.trim().to_string()),
                "version" => version = Some(v.trim().to_string()),
                "requires-dist" => requires.push(v.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((name?, version?, requires))
}

/// An egg-info `requires.txt` as `Requires-Dist` lines: sections
/// `[extra]`, `[:marker]` and `[extra:marker]` become markers.
pub fn requires_txt(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (extra, cond) = section.split_once(':').unwrap_or((section, ""));
            let mut parts = Vec::new();
            if !extra.trim().is_empty() {
                parts.push(format!("extra == \"{}\"", extra.trim()));
            }
            if !cond.trim().is_empty() {
                parts.push(format!("({})", cond.trim()));
            }
            marker = (!parts.is_empty()).then(|| parts.join(" and "));
            continue;
        }
        out.push(match &marker {
            Some(m) => format!("{line} ; {m}"),
            None => line.to_string(),
        });
    }
    out
}

/// dpkg's file lists and the RPM database's: real path of each listed
/// Python metadata directory or file → the package that installed it.
fn owners(root: &dyn Root, rpm: &[RpmPackage]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in rpm {
        for path in &p.python_metadata {
            let real = root
                .canonical(path)
                .unwrap_or_else(|| path.trim_start_matches('/').into());
            out.insert(real, p.name.clone());
        }
    }
    let dir = "var/lib/dpkg/info";
    for file in root.list(dir) {
        let Some(package) = file.strip_suffix(".list") else {
            continue;
        };
        let package = package.split(':').next().unwrap_or(package);
        let Some(data) = root.read(&format!("{dir}/{file}")) else {
            continue;
        };
        for line in String::from_utf8_lossy(&data).lines() {
            let line = line.trim_end_matches('/');
            if line.ends_with(".dist-info") || line.ends_with(".egg-info") {
                let real = root
                    .canonical(line)
                    .unwrap_or_else(|| line.trim_start_matches('/').into());
                out.insert(real, package.to_string());
            }
        }
    }
    out
}

/// Python packages of every site-packages / dist-packages directory, each
/// directory read once under its real path.
pub fn python_packages(root: &dyn Root, rpm: &[RpmPackage]) -> Vec<PythonPackage> {
    let mut sites = BTreeSet::new();
    for prefix in prefixes(root) {
        for lib in ["lib", "lib64"] {
            let dir = join(&prefix, lib);
            for name in root.list(&dir) {
                if python_xy(&name).is_some() || name == "python3" {
                    for site in ["site-packages", "dist-packages"] {
                        if let Some(real) = root.canonical(&format!("{dir}/{name}/{site}"))
                            && root.exists(&real)
                        {
                            sites.insert(real);
                        }
                    }
                }
            }
        }
    }
    let owners = owners(root, rpm);
    let mut out = Vec::new();
    for site in sites {
        for entry in root.list(&site) {
            let dir = format!("{site}/{entry}");
            let (data, kind) = if entry.ends_with(".dist-info") {
                (root.read(&format!("{dir}/METADATA")), "dist-info")
            } else if entry.ends_with(".egg-info") {
                (
                    root.read(&format!("{dir}/PKG-INFO"))
                        .or_else(|| root.read(&dir)),
                    "egg-info",
                )
            } else {
                continue;
            };
            let Some((name, version, mut requires)) = data.as_deref().and_then(headers) else {
                continue;
            };
            if requires.is_empty()
                && let Some(txt) = root.read(&format!("{dir}/requires.txt"))
            {
                requires = requires_txt(&String::from_utf8_lossy(&txt));
            }
            out.push(PythonPackage {
                name: normalise(&name),
                version,
                location: format!("/{site}"),
                metadata: kind.to_string(),
                requires,
                distro_package: owners.get(&dir).cloned(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Give each interpreter the site directories that are its own: a virtual
/// environment's under its prefix; a system interpreter's under its
/// prefix for its version, plus Debian's version-independent
/// `…/python3/dist-packages` and `/usr/local/lib/pythonX.Y/dist-packages`,
/// which Debian's Python also reads.
pub fn attribute_sites(interpreters: &mut [Interpreter], packages: &[PythonPackage]) {
    let sites: BTreeSet<&str> = packages.iter().map(|p| p.location.as_str()).collect();
    for i in interpreters.iter_mut() {
        let under = |site: &str, prefix: &str| site.starts_with(&format!("{prefix}/lib"));
        let own_version = |site: &str| {
            site.split('/')
                .any(|c| c == format!("python{}", i.version) || c == "python3")
        };
        i.site_dirs = sites
            .iter()
            .filter(|s| own_version(s))
            .filter(|s| match i.kind {
                InterpreterKind::VirtualEnvironment => under(s, &i.prefix),
                InterpreterKind::System => {
                    under(s, &i.prefix)
                        || (i.prefix == "/usr"
                            && s.starts_with("/usr/local/lib/")
                            && s.ends_with("/dist-packages"))
                }
            })
            .map(|s| (*s).to_string())
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_and_requirements_parse() {
        assert_eq!(normalise("Typing_Extensions"), "typing-extensions");
        assert_eq!(normalise("zope.interface"), "zope-interface");
        assert_eq!(python_xy("python3.11"), Some("3.11"));
        assert_eq!(python_xy("python3.11-config"), None);
        assert_eq!(python_xy("python3"), None);
        assert_eq!(
            headers(b"Metadata-Version: 2.1\nName: NumPy\nVersion: 1.26.4\nRequires-Dist: a>=1\n\nName: body"),
            Some(("NumPy".into(), "1.26.4".into(), vec!["a>=1".into()]))
        );
        assert_eq!(upstream("3.11.2-6+deb12u8"), "3.11.2");
        assert_eq!(upstream("1:2.39.5-0+deb12u3"), "2.39.5");
    }

    #[test]
    fn egg_info_requires_become_requirement_lines() {
        // Debian's python3-requests 2.28.1 (requires.txt as installed).
        let text = "\n[security]\n\n[socks]\nPySocks!=1.5.7,>=1.5.6\n\n[use_chardet_on_py3]\nchardet<6,>=3.0.2\n";
        assert_eq!(
            requires_txt(text),
            vec![
                "PySocks!=1.5.7,>=1.5.6 ; extra == \"socks\"".to_string(),
                "chardet<6,>=3.0.2 ; extra == \"use_chardet_on_py3\"".to_string(),
            ]
        );
        assert_eq!(
            requires_txt(
                "idna\n[:python_version < \"3.8\"]\nzipp\n[tests:sys_platform == \"win32\"]\nx\n"
            ),
            vec![
                "idna".to_string(),
                "zipp ; (python_version < \"3.8\")".to_string(),
                "x ; extra == \"tests\" and (sys_platform == \"win32\")".to_string(),
            ]
        );
    }
}
