//! Wheel filename tags and their compatibility with a target interpreter and
//! platform (the subset of pip's `sys_tags` that matters for CPython).

use std::fmt;

/// The (python, abi, platform) tag sets of a wheel filename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelTags {
    /// Python tags (`cp311`, `py3`, …).
    pub python: Vec<String>,
    /// ABI tags (`cp311`, `abi3`, `none`).
    pub abi: Vec<String>,
    /// Platform tags (`manylinux_2_17_x86_64`, `any`, …).
    pub platform: Vec<String>,
}

/// Parse `name-version(-build)?-py-abi-plat.whl`; `None` when not a wheel name.
pub fn parse_wheel_filename(filename: &str) -> Option<WheelTags> {
    let stem = filename.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() != 5 && parts.len() != 6 {
        return None;
    }
    let n = parts.len();
    let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
    Some(WheelTags {
        python: split(parts[n - 3]),
        abi: split(parts[n - 2]),
        platform: split(parts[n - 1]),
    })
}

/// Operating system family of a target.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "os", rename_all = "lowercase")]
pub enum Platform {
    /// Linux with glibc of the given version (manylinux).
    Linux {
        /// Machine, e.g. `x86_64`, `aarch64`.
        arch: String,
        /// glibc (major, minor).
        glibc: (u16, u16),
    },
    /// macOS of the given version.
    Macos {
        /// `x86_64` or `arm64`.
        arch: String,
        /// (major, minor).
        version: (u16, u16),
    },
    /// Windows.
    Windows {
        /// `amd64`, `win32` or `arm64`.
        arch: String,
    },
}

/// glibc assumed when the OS does not tell (RHEL 8's).
pub const DEFAULT_GLIBC: (u16, u16) = (2, 28);

/// glibc of well-known distributions, by (os name, major version).
pub fn glibc_for_os(os: Option<&str>, version: Option<&str>) -> (u16, u16) {
    let major = version.and_then(|v| v.split('.').next()).unwrap_or("");
    match (os.unwrap_or(""), major) {
        ("rhel" | "ubi" | "centos" | "rocky" | "almalinux", "7") => (2, 17),
        ("rhel" | "ubi" | "centos" | "rocky" | "almalinux", "8") => (2, 28),
        ("rhel" | "ubi" | "centos" | "rocky" | "almalinux", "9") => (2, 34),
        ("debian", "10") => (2, 28),
        ("debian", "11") => (2, 31),
        ("debian", "12") => (2, 36),
        ("ubuntu", "18") => (2, 27),
        ("ubuntu", "20") => (2, 31),
        ("ubuntu", "22") => (2, 35),
        ("ubuntu", "24") => (2, 39),
        ("fedora", v) if v.parse::<u32>().is_ok_and(|n| n >= 35) => (2, 34),
        _ => DEFAULT_GLIBC,
    }
}

impl Platform {
    /// From a sysconfig platform string (`linux-x86_64`, `macosx-11.0-arm64`,
    /// `win-amd64`) and the glibc of the OS.
    pub fn from_sysconfig(platform: &str, glibc: (u16, u16)) -> Self {
        if let Some(rest) = platform.strip_prefix("macosx-") {
            let mut parts = rest.split('-');
            let version = parts.next().unwrap_or("11.0");
            let arch = parts.next().unwrap_or("arm64").to_string();
            let mut v = version.split('.').map(|p| p.parse::<u16>().unwrap_or(0));
            return Self::Macos {
                arch,
                version: (v.next().unwrap_or(11), v.next().unwrap_or(0)),
            };
        }
        if platform == "win32" {
            return Self::Windows {
                arch: "win32".into(),
            };
        }
        if let Some(arch) = platform.strip_prefix("win-") {
            return Self::Windows {
                arch: arch.to_ascii_lowercase(),
            };
        }
        let arch = platform
            .strip_prefix("linux-")
            .unwrap_or("x86_64")
            .to_string();
        Self::Linux { arch, glibc }
    }

    /// Is a wheel platform tag installable here?
    pub fn accepts(&self, tag: &str) -> bool {
        if tag == "any" {
            return true;
        }
        match self {
            Self::Linux { arch, glibc } => {
                if tag == format!("linux_{arch}") {
                    return true;
                }
                let legacy = match tag.strip_suffix(&format!("_{arch}")) {
                    Some("manylinux1") => Some((2, 5)),
                    Some("manylinux2010") => Some((2, 12)),
                    Some("manylinux2014") => Some((2, 17)),
                    _ => None,
                };
                if let Some(needed) = legacy {
                    return needed <= *glibc;
                }
                let Some(rest) = tag.strip_prefix("manylinux_") else {
                    return false;
                };
                let Some(version) = rest.strip_suffix(&format!("_{arch}")) else {
                    return false;
                };
                let mut it = version.split('_').map(|p| p.parse::<u16>());
                match (it.next(), it.next(), it.next()) {
                    (Some(Ok(major)), Some(Ok(minor)), None) => (major, minor) <= *glibc,
                    _ => false,
                }
            }
            Self::Macos { arch, version } => {
                let Some(rest) = tag.strip_prefix("macosx_") else {
                    return false;
                };
                let mut parts = rest.splitn(3, '_');
                let (Some(major), Some(minor), Some(tag_arch)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                let (Ok(major), Ok(minor)) = (major.parse::<u16>(), minor.parse::<u16>()) else {
                    return false;
                };
                let arch_ok = tag_arch == arch
                    || tag_arch == "universal2"
                    || (arch == "x86_64"
                        && matches!(tag_arch, "intel" | "fat64" | "fat3" | "universal"));
                arch_ok && (major, minor) <= *version
            }
            Self::Windows { arch } => match arch.as_str() {
                "amd64" => tag == "win_amd64",
                "arm64" => tag == "win_arm64",
                _ => tag == "win32",
            },
        }
    }
}

/// The interpreter and platform wheels must fit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WheelTarget {
    /// CPython (major, minor).
    pub python: (u16, u16),
    /// Platform.
    pub platform: Platform,
}

impl fmt::Display for WheelTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPython {}.{} on ", self.python.0, self.python.1)?;
        match &self.platform {
            Platform::Linux { arch, glibc } => {
                write!(f, "linux {arch} (glibc {}.{})", glibc.0, glibc.1)
            }
            Platform::Macos { arch, version } => {
                write!(f, "macOS {}.{} {arch}", version.0, version.1)
            }
            Platform::Windows { arch } => write!(f, "Windows {arch}"),
        }
    }
}

fn py_version_tag(tag: &str, prefix: &str) -> Option<(u16, Option<u16>)> {
    let digits = tag.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let major = digits[..1].parse().ok()?;
    let minor = if digits.len() > 1 {
        Some(digits[1..].parse().ok()?)
    } else {
        None
    };
    Some((major, minor))
}

impl WheelTarget {
    /// Is one (python, abi) pair usable by this interpreter?
    fn accepts_interpreter(&self, python: &str, abi: &str) -> bool {
        let (major, minor) = self.python;
        let own_cp = format!("cp{major}{minor}");
        match abi {
            "abi3" => py_version_tag(python, "cp")
                .is_some_and(|(ma, mi)| ma == major && mi.is_none_or(|mi| mi <= minor)),
            "none" => {
                if python == own_cp {
                    return true;
                }
                py_version_tag(python, "py")
                    .is_some_and(|(ma, mi)| ma == major && mi.is_none_or(|mi| mi <= minor))
            }
            // CPython 3.7 and older (built with pymalloc, as every
            // distribution does) name their ABI `cp3Xm`.
            _ => {
                python == own_cp
                    && (abi == own_cp
                        || (major == 3 && minor <= 7 && abi.strip_suffix('m') == Some(&own_cp)))
            }
        }
    }

    /// Is a wheel with these tags installable?
    pub fn accepts(&self, tags: &WheelTags) -> bool {
        tags.platform.iter().any(|p| self.platform.accepts(p))
            && tags
                .python
                .iter()
                .any(|py| tags.abi.iter().any(|abi| self.accepts_interpreter(py, abi)))
    }

    /// Is the file (wheel or sdist) installable? Source distributions count,
    /// as with pip: they can be built on the target.
    pub fn accepts_filename(&self, filename: &str) -> bool {
        match parse_wheel_filename(filename) {
            Some(tags) => self.accepts(&tags),
            None => is_sdist(filename),
        }
    }
}

/// Source distribution file name?
pub fn is_sdist(filename: &str) -> bool {
    filename.ends_with(".tar.gz")
        || filename.ends_with(".zip")
        || filename.ends_with(".tar.bz2")
        || filename.ends_with(".tgz")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(py: (u16, u16)) -> WheelTarget {
        WheelTarget {
            python: py,
            platform: Platform::from_sysconfig("linux-x86_64", (2, 28)),
        }
    }

    #[test]
    fn cpython_linux() {
        let t = linux((3, 11));
        assert!(t.accepts_filename(
            "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(!t.accepts_filename(
            "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        ));
        assert!(!t.accepts_filename("numpy-2.3.0-cp311-cp311-manylinux_2_34_x86_64.whl"));
        assert!(!t.accepts_filename("numpy-1.26.4-cp311-cp311-musllinux_1_1_x86_64.whl"));
        // `cp3Xm` is the ABI of CPython 3.7 and older only.
        assert!(!t.accepts_filename("numpy-1.26.4-cp311-cp311m-manylinux2014_x86_64.whl"));
        assert!(!t.accepts_filename("numpy-1.26.4-cp311-cp311-manylinux_2_17_aarch64.whl"));
        assert!(t.accepts_filename("cryptography-42.0.5-cp39-abi3-manylinux_2_28_x86_64.whl"));
        assert!(!t.accepts_filename("cryptography-42.0.5-cp312-abi3-manylinux_2_28_x86_64.whl"));
        assert!(t.accepts_filename("requests-2.31.0-py3-none-any.whl"));
        assert!(t.accepts_filename("six-1.16.0-py2.py3-none-any.whl"));
        assert!(!t.accepts_filename("futures-3.4.0-py2-none-any.whl"));
        assert!(t.accepts_filename("pkg-1.0-1build-py3-none-any.whl"));
        assert!(t.accepts_filename("pkg-1.0.tar.gz"));
        assert!(!t.accepts_filename("pkg-1.0-cp311-cp311-win_amd64.whl"));
    }

    #[test]
    fn cpython_37_and_older_use_the_m_abi() {
        // Real file names of numpy 1.21.6, the last release for 3.7.
        let t = linux((3, 7));
        assert!(t.accepts_filename(
            "numpy-1.21.6-cp37-cp37m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
        ));
        assert!(!t.accepts_filename(
            "numpy-1.21.6-cp38-cp38-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
        ));
        assert!(!t.accepts_filename(
            "numpy-1.21.6-cp36-cp36m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
        ));
        assert!(linux((3, 6)).accepts_filename("numpy-1.19.5-cp36-cp36m-manylinux2010_x86_64.whl"));
        assert!(!linux((3, 8)).accepts_filename(
            "numpy-1.21.6-cp38-cp38m-manylinux_2_12_x86_64.manylinux2010_x86_64.whl"
        ));
    }

    #[test]
    fn other_platforms() {
        let mac = WheelTarget {
            python: (3, 12),
            platform: Platform::from_sysconfig("macosx-11.0-arm64", (0, 0)),
        };
        assert!(mac.accepts_filename("x-1-cp312-cp312-macosx_11_0_arm64.whl"));
        assert!(mac.accepts_filename("x-1-cp312-cp312-macosx_10_9_universal2.whl"));
        assert!(!mac.accepts_filename("x-1-cp312-cp312-macosx_14_0_arm64.whl"));
        assert!(!mac.accepts_filename("x-1-cp312-cp312-macosx_10_9_x86_64.whl"));
        let win = WheelTarget {
            python: (3, 12),
            platform: Platform::from_sysconfig("win-amd64", (0, 0)),
        };
        assert!(win.accepts_filename("x-1-cp312-cp312-win_amd64.whl"));
        assert!(!win.accepts_filename("x-1-cp312-cp312-win32.whl"));
    }

    #[test]
    fn glibc_by_os() {
        assert_eq!(glibc_for_os(Some("rhel"), Some("9.2")), (2, 34));
        assert_eq!(glibc_for_os(Some("ubuntu"), Some("22.04")), (2, 35));
        assert_eq!(glibc_for_os(None, None), DEFAULT_GLIBC);
    }
}
