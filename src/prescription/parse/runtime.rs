//! Parsing `should_include.runtime_environments`: the conditions on the
//! machine, its Python, hardware and base image a unit is included for.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::prescription::reader::{Reader, describe, join};
use crate::prescription::schema::*;

pub(super) fn runtime(r: &mut Reader, v: &Value) -> Option<RuntimeMatch> {
    let base = "should_include.runtime_environments";
    let m = r.map(
        v,
        base,
        &[
            "operating_systems",
            "hardware",
            "python_version",
            "cuda_version",
            "cudnn_version",
            "openblas_version",
            "openmpi_version",
            "mkl_version",
            "platforms",
            "base_images",
            "abi",
            "rpm_packages",
            "python_packages",
        ],
    )?;
    let mut out = RuntimeMatch::default();
    if let Some(v) = m.get("operating_systems") {
        out.operating_systems = operating_systems(r, v, &format!("{base}.operating_systems"));
    }
    if let Some(v) = m.get("hardware") {
        out.hardware = Some(hardware(r, v, &format!("{base}.hardware")));
    }
    out.python_version =
        r.version_check(m.get("python_version"), &format!("{base}.python_version"));
    out.cuda_version = r.version_check(m.get("cuda_version"), &format!("{base}.cuda_version"));
    out.cudnn_version = r.version_check(m.get("cudnn_version"), &format!("{base}.cudnn_version"));
    out.openblas_version = r.version_check(
        m.get("openblas_version"),
        &format!("{base}.openblas_version"),
    );
    out.openmpi_version =
        r.version_check(m.get("openmpi_version"), &format!("{base}.openmpi_version"));
    out.mkl_version = r.version_check(m.get("mkl_version"), &format!("{base}.mkl_version"));
    if let Some(v) = m.get("platforms") {
        out.platforms = r.selector(v, &format!("{base}.platforms"), Reader::string);
    }
    if let Some(v) = m.get("base_images") {
        out.base_images = r.selector(v, &format!("{base}.base_images"), Reader::nullable_string);
    }
    if let Some(v) = m.get("abi") {
        out.abi = r.selector(v, &format!("{base}.abi"), Reader::string);
    }
    if let Some(v) = m.get("rpm_packages") {
        out.rpm_packages = r.selector(v, &format!("{base}.rpm_packages"), rpm_match);
    }
    if let Some(v) = m.get("python_packages") {
        out.python_packages =
            r.selector(v, &format!("{base}.python_packages"), python_package_match);
    }
    Some(out)
}

/// `operating_systems`: a list of name/version pairs.
fn operating_systems(r: &mut Reader, v: &Value, path: &str) -> Option<Vec<OsMatch>> {
    match v {
        Value::Sequence(items) => {
            let mut list = Vec::new();
            for (i, it) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let Some(os) = r.map(it, &p, &["name", "version"]) else {
                    continue;
                };
                let name = os
                    .get("name")
                    .and_then(|v| r.nullable_string(v, &format!("{p}.name")))
                    .flatten();
                let version = os
                    .get("version")
                    .and_then(|v| match v {
                        Value::Number(n) => Some(Some(n.to_string())),
                        other => r.nullable_string(other, &format!("{p}.version")),
                    })
                    .flatten();
                list.push(OsMatch { name, version });
            }
            Some(list)
        }
        other => {
            r.error(path, format!("expected a list, found {}", describe(other)));
            None
        }
    }
}

/// `hardware`: one alternative or a list of them.
fn hardware(r: &mut Reader, v: &Value, path: &str) -> Vec<HardwareMatch> {
    let entries: Vec<&Value> = match v {
        Value::Sequence(items) if !items.is_empty() => items.iter().collect(),
        Value::Mapping(_) => vec![v],
        other => {
            r.error(
                path,
                format!(
                    "expected a non-empty list of hardware alternatives, found {}",
                    describe(other)
                ),
            );
            Vec::new()
        }
    };
    let mut list = Vec::new();
    for (i, it) in entries.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(hw) = r.map(
            it,
            &p,
            &["cpu_families", "cpu_models", "cpu_flags", "gpu_models"],
        ) else {
            continue;
        };
        let mut h = HardwareMatch::default();
        if let Some(v) = hw.get("cpu_families") {
            h.cpu_families = r.selector(v, &format!("{p}.cpu_families"), Reader::nullable_int);
        }
        if let Some(v) = hw.get("cpu_models") {
            h.cpu_models = r.selector(v, &format!("{p}.cpu_models"), Reader::nullable_int);
        }
        if let Some(v) = hw.get("cpu_flags") {
            h.cpu_flags = r.selector(v, &format!("{p}.cpu_flags"), Reader::string);
        }
        if let Some(v) = hw.get("gpu_models") {
            h.gpu_models = r.selector(v, &format!("{p}.gpu_models"), Reader::nullable_string);
        }
        list.push(h);
    }
    list
}

/// One `rpm_packages` entry: its fields as text.
fn rpm_match(r: &mut Reader, v: &Value, p: &str) -> Option<RpmMatch> {
    let m = r.map(
        v,
        p,
        &[
            "package_name",
            "package_identifier",
            "epoch",
            "package_version",
            "release",
            "arch",
            "src",
        ],
    )?;
    if !m.contains_key("package_name") {
        r.error(&join(p, "package_name"), "missing package_name");
        return None;
    }
    let mut fields = BTreeMap::new();
    for (k, val) in m {
        let key = k.as_str().unwrap_or("?");
        let text = match val {
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => r.string(other, &join(p, key))?,
        };
        fields.insert(key.to_string(), text);
    }
    Some(RpmMatch { fields })
}

/// One `python_packages` entry.
fn python_package_match(r: &mut Reader, v: &Value, p: &str) -> Option<PythonPackageMatch> {
    let m = r.map(v, p, &["name", "version", "location"])?;
    let name = r.name(m.get("name").unwrap_or(&Value::Null), &join(p, "name"))?;
    let version = match m.get("version") {
        Some(v) => Some(r.specifier(v, &join(p, "version"))?),
        None => None,
    };
    let location = match m.get("location") {
        Some(v) => Some(r.string(v, &join(p, "location"))?),
        None => None,
    };
    Some(PythonPackageMatch {
        name,
        version,
        location,
    })
}
