//! `.thoth.yaml`, in the format Thoth's command-line client (thamos) wrote:
//! a list of runtime environments plus a few project-wide settings.
//!
//! Every field keeps the difference between *absent*, `null` and a value
//! ([`Field`]), unknown keys are warnings, and type errors name the line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{InputError, read_to_string};
use crate::policy::{RecommendationType, RequirementsFormat};

/// A value that may be absent, explicitly `null`, or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Field<T> {
    /// The key was not written.
    #[default]
    Absent,
    /// The key was written as `null` ("unknown").
    Null,
    /// The key has a value.
    Value(T),
}

impl<T> Field<T> {
    /// The value, if set.
    pub fn value(&self) -> Option<&T> {
        match self {
            Self::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Was the key left out entirely?
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// Build from an option: `None` becomes `null`.
    pub fn from_option(value: Option<T>) -> Self {
        value.map_or(Self::Null, Self::Value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Self::Null, Self::Value))
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

/// A scalar written as a string or a number (`python_version: 3.8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            S(String),
            I(i64),
            F(f64),
        }
        Ok(Text(match Scalar::deserialize(d)? {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
        }))
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// `operating_system`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OperatingSystem {
    /// e.g. `rhel`, `fedora`, `ubuntu`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub name: Field<Text>,
    /// e.g. `8`, `22.04`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub version: Field<Text>,
}

/// `hardware`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hardware {
    /// x86 CPU family number (`cpu family` in /proc/cpuinfo).
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub cpu_family: Field<i64>,
    /// x86 CPU model number.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub cpu_model: Field<i64>,
    /// Instruction-set flags that matter for builds (avx2, avx512f, …).
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub cpu_flags: Field<Vec<String>>,
    /// GPU model name.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub gpu_model: Field<Text>,
}

/// One entry of `runtime_environments`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuntimeEnvironment {
    /// Name used with `--runtime-environment`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub name: Field<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub operating_system: Field<OperatingSystem>,
    /// Hardware.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub hardware: Field<Hardware>,
    /// `X.Y`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub python_version: Field<Text>,
    /// CUDA version.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub cuda_version: Field<Text>,
    /// cuDNN version.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub cudnn_version: Field<Text>,
    /// Intel MKL version.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub mkl_version: Field<Text>,
    /// OpenBLAS version.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub openblas_version: Field<Text>,
    /// Open MPI version.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub openmpi_version: Field<Text>,
    /// Container base image, `image:tag`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub base_image: Field<String>,
    /// How the project is installed on the base image: `new-venv`,
    /// `system-site-packages` or `into-image`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub base_image_mode: Field<String>,
    /// sysconfig platform, e.g. `linux-x86_64`.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub platform: Field<String>,
    /// Recommendation type for this environment.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub recommendation_type: Field<RecommendationType>,
    /// Labels selecting prescriptions.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub labels: Field<BTreeMap<String, Text>>,
}

/// The whole `.thoth.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ThothYaml {
    /// Thoth's service host; unused offline, kept for compatibility.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub host: Field<String>,
    /// Unused offline.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub tls_verify: Field<bool>,
    /// Which project files the user keeps.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub requirements_format: Field<RequirementsFormat>,
    /// Per-environment overlay directories.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub overlays_dir: Field<String>,
    /// Unused offline.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub virtualenv: Field<bool>,
    /// Project-wide recommendation type.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub recommendation_type: Field<RecommendationType>,
    /// Runtime environments; the first is the default.
    #[serde(default)]
    pub runtime_environments: Vec<RuntimeEnvironment>,
    /// Kebechet managers; kept as data, unused.
    #[serde(default, skip_serializing_if = "Field::is_absent")]
    pub managers: Field<serde_yaml::Value>,
}

/// A loaded `.thoth.yaml` with its warnings.
#[derive(Debug, Clone)]
pub struct ThothConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// The content.
    pub config: ThothYaml,
    /// Unknown keys and other non-fatal findings.
    pub warnings: Vec<String>,
}

const TOP_KEYS: &[&str] = &[
    "host",
    "tls_verify",
    "requirements_format",
    "overlays_dir",
    "virtualenv",
    "recommendation_type",
    "runtime_environments",
    "managers",
];
const ENV_KEYS: &[&str] = &[
    "name",
    "operating_system",
    "hardware",
    "python_version",
    "cuda_version",
    "cudnn_version",
    "mkl_version",
    "openblas_version",
    "openmpi_version",
    "base_image",
    "base_image_mode",
    "platform",
    "recommendation_type",
    "labels",
];
const OS_KEYS: &[&str] = &["name", "version"];
const HW_KEYS: &[&str] = &["cpu_family", "cpu_model", "cpu_flags", "gpu_model"];
const VERSION_KEYS: &[&str] = &[
    "python_version",
    "cuda_version",
    "cudnn_version",
    "mkl_version",
    "openblas_version",
    "openmpi_version",
];

impl ThothConfig {
    /// Read and validate `.thoth.yaml`.
    pub fn from_path(path: &Path) -> Result<Self, InputError> {
        let text = read_to_string(path)?;
        Self::parse(path, &text)
    }

    /// Parse `.thoth.yaml` text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Self, InputError> {
        super::yaml_budget::check(text)
            .map_err(|e| InputError::file(path, format!("invalid .thoth.yaml: {e}")))?;
        let config: ThothYaml = if text.trim().is_empty() {
            ThothYaml::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?
        };
        let value: serde_yaml::Value = if text.trim().is_empty() {
            serde_yaml::Value::Null
        } else {
            serde_yaml::from_str(text).map_err(|e| yaml_error(path, &e))?
        };
        let mut warnings = Vec::new();
        check_keys(path, text, &value, &mut warnings);
        let out = Self {
            path: path.to_path_buf(),
            config,
            warnings,
        };
        out.validate(text)?;
        Ok(out)
    }

    fn validate(&self, text: &str) -> Result<(), InputError> {
        let mut seen = Vec::new();
        for (i, env) in self.config.runtime_environments.iter().enumerate() {
            let key = |k: &str| format!("runtime_environments[{i}].{k}");
            let err = |k: &str, message: String| {
                let e = InputError::file(&self.path, message).key(key(k));
                match find_key_line(text, k) {
                    Some(line) => e.at_line(line),
                    None => e,
                }
            };
            if let Some(name) = env.name.value() {
                if name.is_empty()
                    || !name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                {
                    return Err(err(
                        "name",
                        format!(
                            "invalid environment name `{name}`: use letters, digits, `_` and `-`"
                        ),
                    ));
                }
                if seen.contains(name) {
                    return Err(err(
                        "name",
                        format!("runtime environment `{name}` is defined twice"),
                    ));
                }
                seen.push(name.clone());
            }
            if let Some(os) = env.operating_system.value()
                && os.version.value().is_some()
                && os.name.value().is_none()
            {
                return Err(err(
                    "version",
                    "operating_system.version is set but operating_system.name is not".into(),
                ));
            }
            if let Some(v) = env.python_version.value() {
                let ok = matches!(v.0.split('.').count(), 2 | 3)
                    && v.0
                        .split('.')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
                if !ok {
                    return Err(err(
                        "python_version",
                        format!(
                            "invalid python_version `{}`: expected MAJOR.MINOR such as \"3.11\" (or a patch release such as \"3.11.7\")",
                            v.0
                        ),
                    ));
                }
            }
            for (k, field) in [
                ("cuda_version", &env.cuda_version),
                ("cudnn_version", &env.cudnn_version),
                ("mkl_version", &env.mkl_version),
                ("openblas_version", &env.openblas_version),
                ("openmpi_version", &env.openmpi_version),
            ] {
                if let Some(v) = field.value() {
                    crate::python::parse_version(&v.0).map_err(|e| err(k, e.message))?;
                }
            }
            check_platform_and_image(env, &err)?;
        }
        Ok(())
    }

    /// The runtime environment named `name`, or the first one.
    pub fn environment(
        &self,
        name: Option<&str>,
    ) -> Result<Option<&RuntimeEnvironment>, InputError> {
        match name {
            None => Ok(self.config.runtime_environments.first()),
            Some(name) => self
                .config
                .runtime_environments
                .iter()
                .find(|e| e.name.value().is_some_and(|n| n == name))
                .map(Some)
                .ok_or_else(|| {
                    let known: Vec<&str> = self
                        .config
                        .runtime_environments
                        .iter()
                        .filter_map(|e| e.name.value().map(String::as_str))
                        .collect();
                    InputError::file(
                        &self.path,
                        format!(
                            "no runtime environment named `{name}` (defined: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    )
                    .key("runtime_environments")
                }),
        }
    }
}

fn yaml_error(path: &Path, err: &serde_yaml::Error) -> InputError {
    let mut message = err.to_string();
    if let Some(pos) = message.find(" at line ") {
        message.truncate(pos);
    }
    let out = InputError::file(path, format!("invalid .thoth.yaml: {message}"));
    match err.location() {
        Some(loc) => out.at(Some((loc.line(), loc.column()))),
        None => out,
    }
}

/// First line that writes `key:` (as a mapping key), for messages.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let t = line.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn check_keys(path: &Path, text: &str, value: &serde_yaml::Value, warnings: &mut Vec<String>) {
    let mut warn = |key_path: String, leaf: &str, what: &str| {
        let at = find_key_line(text, leaf)
            .map(|l| format!(":{l}"))
            .unwrap_or_default();
        warnings.push(format!("{}{at}: {what} `{key_path}`", path.display()));
    };
    let Some(top) = value.as_mapping() else {
        return;
    };
    for (k, v) in top {
        let Some(k) = k.as_str() else { continue };
        if !TOP_KEYS.contains(&k) {
            warn(k.to_string(), k, "unknown key ignored:");
            continue;
        }
        if k != "runtime_environments" {
            continue;
        }
        let Some(envs) = v.as_sequence() else {
            continue;
        };
        for (i, env) in envs.iter().enumerate() {
            let Some(env) = env.as_mapping() else {
                continue;
            };
            for (ek, ev) in env {
                let Some(ek) = ek.as_str() else { continue };
                let here = format!("runtime_environments[{i}].{ek}");
                if !ENV_KEYS.contains(&ek) {
                    warn(here, ek, "unknown key ignored:");
                    continue;
                }
                if VERSION_KEYS.contains(&ek) && ev.is_f64() {
                    warn(
                        here.clone(),
                        ek,
                        "version written as a YAML number (quote it, e.g. \"3.10\", or 3.10 reads as 3.1):",
                    );
                }
                let nested = match ek {
                    "operating_system" => OS_KEYS,
                    "hardware" => HW_KEYS,
                    _ => continue,
                };
                if let Some(map) = ev.as_mapping() {
                    for nk in map.keys().filter_map(|k| k.as_str()) {
                        if !nested.contains(&nk) {
                            warn(format!("{here}.{nk}"), nk, "unknown key ignored:");
                        }
                    }
                }
            }
        }
    }
}

/// `platform`, `base_image` and `base_image_mode` of one runtime
/// environment (`err` names the key).
fn check_platform_and_image(
    env: &RuntimeEnvironment,
    err: &dyn Fn(&str, String) -> InputError,
) -> Result<(), InputError> {
    if let Some(platform) = env.platform.value()
        && (platform.is_empty() || platform.contains(char::is_whitespace))
    {
        return Err(err(
            "platform",
            format!("invalid platform `{platform}`: expected e.g. linux-x86_64"),
        ));
    }
    if let Some(image) = env.base_image.value()
        && (image.is_empty() || image.contains(char::is_whitespace))
    {
        return Err(err(
            "base_image",
            format!("invalid base_image `{image}`: expected image:tag"),
        ));
    }
    if let Some(image) = env.base_image.value()
        && image.len() > crate::image::MAX_REFERENCE_LEN
    {
        return Err(err(
            "base_image",
            format!(
                "base_image is {} characters long; an image name or path is at most {}",
                image.len(),
                crate::image::MAX_REFERENCE_LEN
            ),
        ));
    }
    if let Some(mode) = env.base_image_mode.value()
        && crate::image::ImageMode::parse(mode).is_none()
    {
        return Err(err(
            "base_image_mode",
            format!(
                "invalid base_image_mode `{mode}`: expected one of {}",
                crate::image::ImageMode::NAMES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(())
}
