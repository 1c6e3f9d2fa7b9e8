//! What an image's root filesystem holds: OS, system packages, ABI
//! symbols, CUDA and cuDNN (Python is read by [`super::python`]).

use std::collections::{BTreeMap, BTreeSet};

use super::elf;
use super::rpmdb;
use super::tree::Root;
use super::{DebPackage, OsRelease, RpmReport};
use crate::environment::detect::{
    parse_cuda_version_json, parse_cuda_version_text, parse_cudnn_header,
};

/// `KEY=value` lines of os-release, quotes removed.
pub fn os_release(root: &dyn Root) -> Option<OsRelease> {
    let data = root
        .read("etc/os-release")
        .or_else(|| root.read("usr/lib/os-release"))?;
    let text = String::from_utf8_lossy(&data);
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            fields.insert(k.trim().to_string(), v.to_string());
        }
    }
    Some(OsRelease {
        id: fields.get("ID").cloned(),
        version_id: fields.get("VERSION_ID").cloned(),
        id_like: fields.get("ID_LIKE").cloned(),
        pretty_name: fields.get("PRETTY_NAME").cloned(),
    })
}

/// Installed packages of dpkg's status file.
pub fn deb_packages(root: &dyn Root) -> Vec<DebPackage> {
    let Some(data) = root.read("var/lib/dpkg/status") else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&data);
    let mut out = Vec::new();
    for paragraph in text.split("\n\n") {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for line in paragraph.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let installed = fields
            .get("Status")
            .is_none_or(|s| s.split_whitespace().last() == Some("installed"));
        if let (Some(name), Some(version), true) =
            (fields.get("Package"), fields.get("Version"), installed)
        {
            out.push(DebPackage {
                name: (*name).to_string(),
                version: (*version).to_string(),
                architecture: fields.get("Architecture").map(|a| (*a).to_string()),
            });
        }
    }
    out.sort();
    out
}

/// Installed RPMs, or why they cannot be read.
pub fn rpm_packages(root: &dyn Root) -> RpmReport {
    for db in [
        "var/lib/rpm/rpmdb.sqlite",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
    ] {
        if let Some(bytes) = root.read(db) {
            return match rpmdb::read_sqlite(&bytes) {
                Ok(packages) => RpmReport {
                    database: Some(format!("/{db}")),
                    readable: true,
                    note: None,
                    packages,
                },
                Err(e) => RpmReport {
                    database: Some(format!("/{db}")),
                    readable: false,
                    note: Some(format!("the RPM database could not be read: {e}")),
                    packages: Vec::new(),
                },
            };
        }
    }
    for (db, format) in [
        ("var/lib/rpm/Packages", "Berkeley DB"),
        ("usr/lib/sysimage/rpm/Packages", "Berkeley DB"),
        ("var/lib/rpm/Packages.db", "NDB"),
        ("usr/lib/sysimage/rpm/Packages.db", "NDB"),
    ] {
        if root.exists(db) {
            return RpmReport {
                database: Some(format!("/{db}")),
                readable: false,
                note: Some(format!(
                    "the RPM database is in {format} format, which is not readable without rpm; \
                     RPM packages are unknown"
                )),
                packages: Vec::new(),
            };
        }
    }
    RpmReport {
        database: None,
        readable: true,
        note: None,
        packages: Vec::new(),
    }
}

/// Version definitions of the C and C++ runtime libraries.
pub fn abi_symbols(root: &dyn Root) -> Vec<String> {
    let mut dirs: Vec<String> = ["lib", "lib64", "usr/lib", "usr/lib64"]
        .iter()
        .map(|d| d.to_string())
        .collect();
    for base in ["lib", "usr/lib"] {
        for name in root.list(base) {
            if name.ends_with("-linux-gnu") {
                dirs.push(format!("{base}/{name}"));
            }
        }
    }
    let mut out = BTreeSet::new();
    for dir in dirs {
        for lib in ["libc.so.6", "libstdc++.so.6"] {
            if let Some(data) = root.read(&format!("{dir}/{lib}")) {
                out.extend(elf::version_definitions(&data));
            }
        }
    }
    out.into_iter().collect()
}

/// CUDA version (X.Y) of the toolkit in the image, else from the image's
/// `CUDA_VERSION` variable.
pub fn cuda_version(root: &dyn Root, env: &BTreeMap<String, String>) -> Option<String> {
    let mut dirs = vec!["usr/local/cuda".to_string()];
    dirs.extend(
        root.list("usr/local")
            .into_iter()
            .filter(|n| n.starts_with("cuda-"))
            .map(|n| format!("usr/local/{n}")),
    );
    dirs.iter()
        .find_map(|d| {
            root.read(&format!("{d}/version.json"))
                .and_then(|b| parse_cuda_version_json(&String::from_utf8_lossy(&b)))
                .or_else(|| {
                    root.read(&format!("{d}/version.txt"))
                        .and_then(|b| parse_cuda_version_text(&String::from_utf8_lossy(&b)))
                })
        })
        .or_else(|| {
            env.get("CUDA_VERSION")
                .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
        })
}

/// cuDNN version from its header, else from `NV_CUDNN_VERSION` /
/// `CUDNN_VERSION`.
pub fn cudnn_version(root: &dyn Root, env: &BTreeMap<String, String>) -> Option<String> {
    let mut files = Vec::new();
    for dir in [
        "usr/include",
        "usr/local/cuda/include",
        "usr/include/x86_64-linux-gnu",
    ] {
        for name in root.list(dir) {
            if name.starts_with("cudnn_version") || name == "cudnn.h" {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files
        .iter()
        .find_map(|f| {
            root.read(f)
                .and_then(|b| parse_cudnn_header(&String::from_utf8_lossy(&b)))
        })
        .or_else(|| {
            env.get("NV_CUDNN_VERSION")
                .or_else(|| env.get("CUDNN_VERSION"))
                .map(|v| v.split(['-', '+']).next().unwrap_or(v).to_string())
        })
}
