//! The prescription v1 model: units with their `should_include`, `match` and
//! `run` sections, parsed from YAML values with a key path for every error.
//!
//! Absent and `null` stay distinct where Thoth's documentation gives `null`
//! a meaning (`cuda_version: null` = "no CUDA"): see [`VersionCheck`].

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

use crate::policy::{DecisionType, RecommendationType};
use crate::python::{self, VersionSpecifiers};

/// Kinds of units, including the specialised ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum UnitKind {
    /// `boot`.
    #[serde(rename = "boot")]
    Boot,
    /// `pseudonym`.
    #[serde(rename = "pseudonym")]
    Pseudonym,
    /// `sieve`.
    #[serde(rename = "sieve")]
    Sieve,
    /// `sieve.SkipPackage`.
    #[serde(rename = "sieve.SkipPackage")]
    SieveSkipPackage,
    /// `step`.
    #[serde(rename = "step")]
    Step,
    /// `step.SkipPackage`.
    #[serde(rename = "step.SkipPackage")]
    StepSkipPackage,
    /// `step.AddPackage`.
    #[serde(rename = "step.AddPackage")]
    StepAddPackage,
    /// `step.Group`.
    #[serde(rename = "step.Group")]
    StepGroup,
    /// `stride`.
    #[serde(rename = "stride")]
    Stride,
    /// `wrap`.
    #[serde(rename = "wrap")]
    Wrap,
    /// `wrap.GHReleaseNotes`.
    #[serde(rename = "wrap.GHReleaseNotes")]
    WrapGhReleaseNotes,
}

impl UnitKind {
    /// Spelling in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Boot => "boot",
            Self::Pseudonym => "pseudonym",
            Self::Sieve => "sieve",
            Self::SieveSkipPackage => "sieve.SkipPackage",
            Self::Step => "step",
            Self::StepSkipPackage => "step.SkipPackage",
            Self::StepAddPackage => "step.AddPackage",
            Self::StepGroup => "step.Group",
            Self::Stride => "stride",
            Self::Wrap => "wrap",
            Self::WrapGhReleaseNotes => "wrap.GHReleaseNotes",
        }
    }

    /// The `units:` list a kind belongs in.
    pub fn list(self) -> &'static str {
        match self {
            Self::Boot => "boots",
            Self::Pseudonym => "pseudonyms",
            Self::Sieve | Self::SieveSkipPackage => "sieves",
            Self::Step | Self::StepSkipPackage | Self::StepAddPackage | Self::StepGroup => "steps",
            Self::Stride => "strides",
            Self::Wrap | Self::WrapGhReleaseNotes => "wraps",
        }
    }

    /// Every kind.
    pub const ALL: [UnitKind; 11] = [
        Self::Boot,
        Self::Pseudonym,
        Self::Sieve,
        Self::SieveSkipPackage,
        Self::Step,
        Self::StepSkipPackage,
        Self::StepAddPackage,
        Self::StepGroup,
        Self::Stride,
        Self::Wrap,
        Self::WrapGhReleaseNotes,
    ];

    fn parse(list: &str, text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text && k.list() == list)
    }
}

/// A list of values, or `{not: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector<T> {
    /// `true` for `{not: …}`.
    pub negated: bool,
    /// The values.
    pub values: Vec<T>,
}

impl<T: PartialEq> Selector<T> {
    /// Does `value` pass?
    pub fn admits(&self, value: &T) -> bool {
        self.values.contains(value) != self.negated
    }
}

/// A version requirement on the runtime environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionCheck {
    /// Key absent: anything matches.
    #[default]
    Any,
    /// `null`: the component must be absent from the environment
    /// (thoth-rs follows Thoth's documentation here, not its code).
    NotPresent,
    /// A specifier the present value must satisfy.
    Spec(VersionSpecifiers),
}

/// One `operating_systems` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsMatch {
    /// OS name, `None` = any.
    pub name: Option<String>,
    /// OS version, `None` = any.
    pub version: Option<String>,
}

/// One `hardware` alternative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HardwareMatch {
    /// CPU families (`null` entry = unknown family).
    pub cpu_families: Option<Selector<Option<i64>>>,
    /// CPU models.
    pub cpu_models: Option<Selector<Option<i64>>>,
    /// CPU flags that must (or, negated, must not) be present.
    pub cpu_flags: Option<Selector<String>>,
    /// GPU models (`null` entry = no GPU).
    pub gpu_models: Option<Selector<Option<String>>>,
}

/// An RPM package requirement on the base image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RpmMatch {
    /// Fields that must equal (package_name, package_version, release, epoch, arch, src, package_identifier).
    pub fields: BTreeMap<String, String>,
}

/// A Python package requirement on the base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonPackageMatch {
    /// Normalised name.
    pub name: String,
    /// Version specifier.
    pub version: Option<VersionSpecifiers>,
    /// Regular-expression-like location (kept as text).
    pub location: Option<String>,
}

/// `should_include.runtime_environments`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeMatch {
    /// Any entry must match.
    pub operating_systems: Option<Vec<OsMatch>>,
    /// Alternatives: any entry must match.
    pub hardware: Option<Vec<HardwareMatch>>,
    /// Python version.
    pub python_version: VersionCheck,
    /// CUDA version.
    pub cuda_version: VersionCheck,
    /// cuDNN version.
    pub cudnn_version: VersionCheck,
    /// OpenBLAS version.
    pub openblas_version: VersionCheck,
    /// Open MPI version.
    pub openmpi_version: VersionCheck,
    /// MKL version.
    pub mkl_version: VersionCheck,
    /// Platforms.
    pub platforms: Option<Selector<String>>,
    /// Base images (`image[:tag]`, tag may end `*`; `None` = no image).
    pub base_images: Option<Selector<Option<String>>>,
    /// ABI symbols.
    pub abi: Option<Selector<String>>,
    /// RPM packages.
    pub rpm_packages: Option<Selector<RpmMatch>>,
    /// Python packages in the image.
    pub python_packages: Option<Selector<PythonPackageMatch>>,
}

/// `should_include`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShouldInclude {
    /// 0 disables the unit.
    pub times: u8,
    /// Included in advise runs.
    pub adviser_pipeline: bool,
    /// Included in Dependency Monkey runs.
    pub dependency_monkey_pipeline: bool,
    /// Recommendation types.
    pub recommendation_types: Option<Selector<RecommendationType>>,
    /// Decision types.
    pub decision_types: Option<Selector<DecisionType>>,
    /// Only (un)authenticated runs.
    pub authenticated: Option<bool>,
    /// Any pair must match a run label.
    pub labels: BTreeMap<String, String>,
    /// Library → symbols used.
    pub library_usage: BTreeMap<String, Vec<String>>,
    /// Units that must already be included, by list (`boots` …).
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// Environment conditions.
    pub runtime_environments: Option<RuntimeMatch>,
}

/// An `index_url` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexMatch {
    /// `{not: url}`.
    pub negated: bool,
    /// URL (trailing `/` removed).
    pub url: String,
}

/// A `package_version` matcher.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PackageMatcher {
    /// Normalised name.
    pub name: Option<String>,
    /// Version specifier.
    pub version: Option<VersionSpecifiers>,
    /// Index condition.
    pub index_url: Option<IndexMatch>,
    /// Development dependency?
    pub develop: Option<bool>,
}

/// `match.state`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateMatch {
    /// All must be resolved.
    pub resolved_dependencies: Vec<PackageMatcher>,
    /// The package was introduced by one of these.
    pub package_version_from: Vec<PackageMatcher>,
    /// … or by others as well.
    pub package_version_from_allow_other: bool,
}

/// One `match` alternative.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchEntry {
    /// `package_name` (boots, SkipPackage sieves).
    pub package_name: Option<String>,
    /// `package_version`.
    pub package_version: Option<PackageMatcher>,
    /// `state`.
    pub state: Option<StateMatch>,
    /// `group` (step.Group).
    pub group: Vec<PackageMatcher>,
}

/// Message severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MessageType {
    /// Information.
    #[serde(rename = "INFO")]
    Info,
    /// Warning.
    #[serde(rename = "WARNING")]
    Warning,
    /// Error.
    #[serde(rename = "ERROR")]
    Error,
}

/// A `stack_info` / `justification` / `log` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// Severity.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Text.
    pub message: String,
    /// Links (URLs or short ids; several when the source had several).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<String>,
    /// Package the message is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// Further keys kept as given (advisory, cve_id, version_range, …).
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// A pseudonym's `yield`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudonymYield {
    /// Yield the matched version of the alternative.
    pub yield_matched_version: bool,
    /// Alternative package name.
    pub name: String,
    /// `==X` pin of the alternative.
    pub locked_version: Option<VersionSpecifiers>,
    /// Index of the alternative.
    pub index_url: Option<IndexMatch>,
}

/// `step.AddPackage`'s package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPackage {
    /// Name.
    pub name: String,
    /// `==X`.
    pub locked_version: String,
    /// Index URL; `None` = the index the snapshot was built from.
    pub index_url: Option<String>,
    /// Development dependency.
    pub develop: bool,
}

/// `wrap.GHReleaseNotes`'s `release_notes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseNotes {
    /// GitHub organisation.
    pub organization: String,
    /// Repository.
    pub repository: String,
    /// Prefix of the tag before the version.
    pub tag_version_prefix: Option<String>,
}

/// `run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Run {
    /// Refuse (boot), reject (step), discard (stride) with this reason.
    pub not_acceptable: Option<String>,
    /// Stop the pipeline gracefully with this reason.
    pub eager_stop_pipeline: Option<String>,
    /// Score added by a step, in [-1, 1].
    pub score: Option<f64>,
    /// Justifications (steps, wraps).
    pub justification: Vec<Message>,
    /// Report-level messages.
    pub stack_info: Vec<Message>,
    /// A log line.
    pub log: Option<Message>,
    /// Steps also run when the package is already resolved.
    pub multi_package_resolution: bool,
    /// Opaque manifest changes (wraps).
    pub advised_manifest_changes: Option<Value>,
    /// Pseudonym alternative.
    pub pseudonym: Option<PseudonymYield>,
    /// Package to add (step.AddPackage).
    pub add_package: Option<AddPackage>,
    /// Release notes (wrap.GHReleaseNotes).
    pub release_notes: Option<ReleaseNotes>,
}

/// A compiled unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// `<prescription name>.<unit name>`.
    pub name: String,
    /// Kind.
    pub kind: UnitKind,
    /// File it came from.
    pub file: String,
    /// Applicability.
    pub should_include: ShouldInclude,
    /// Alternatives (empty = no `match`).
    pub matches: Vec<MatchEntry>,
    /// Effects.
    pub run: Run,
}

/// A problem found while compiling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// File.
    pub file: String,
    /// Unit name (empty for file-level problems).
    pub unit: String,
    /// Key path inside the unit or file.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Collects diagnostics for one unit.
pub struct Reader<'a> {
    /// File name for messages.
    pub file: &'a str,
    /// Unit name for messages.
    pub unit: String,
    /// Errors.
    pub errors: &'a mut Vec<Diagnostic>,
    /// Warnings.
    pub warnings: &'a mut Vec<Diagnostic>,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Reader<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: self.file.into(),
            unit: self.unit.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    fn warning(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.into(),
            unit: self.unit.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// A map with only `allowed` keys; unknown keys are errors.
    fn map<'v>(&mut self, v: &'v Value, path: &str, allowed: &[&str]) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            self.error(path, format!("expected a map, found {}", describe(v)));
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => self.error(
                    &join(path, k),
                    format!("unknown key (expected one of {})", allowed.join(", ")),
                ),
                None => self.error(path, "keys must be strings"),
            }
        }
        Some(m)
    }

    fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.error(path, "expected a non-empty string");
                None
            }
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    path,
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn name(&mut self, v: &Value, path: &str) -> Option<String> {
        let text = self.string(v, path)?;
        match python::parse_name(&text) {
            Ok(n) => Some(n.to_string()),
            Err(e) => {
                self.error(path, e.message);
                None
            }
        }
    }

    fn specifier(&mut self, v: &Value, path: &str) -> Option<VersionSpecifiers> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.error(
                    path,
                    format!("expected a version specifier, found {}", describe(other)),
                );
                return None;
            }
        };
        match python::parse_specifiers(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                // `==git`, `==0.9j`: legacy (non-PEP 440) versions. Installers
                // cannot produce such a release, so the condition never holds.
                let legacy = text
                    .trim()
                    .strip_prefix("==")
                    .filter(|v| !v.is_empty() && !v.contains([',', '<', '>', '!', '=']));
                match legacy {
                    Some(v) => {
                        self.warning(path, format!("`{v}` is not a PEP 440 version: this condition never matches (dead unit)"));
                        python::parse_specifiers("<0.dev0").ok()
                    }
                    None => {
                        self.error(path, e.message);
                        None
                    }
                }
            }
        }
    }

    fn version_check(&mut self, v: Option<&Value>, path: &str) -> VersionCheck {
        match v {
            None => VersionCheck::Any,
            Some(Value::Null) => VersionCheck::NotPresent,
            Some(v) => self
                .specifier(v, path)
                .map_or(VersionCheck::Any, VersionCheck::Spec),
        }
    }

    /// A list, or `{not: list}`.
    fn selector<T>(
        &mut self,
        v: &Value,
        path: &str,
        mut item: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Selector<T>> {
        let (negated, list, list_path) = match v {
            Value::Mapping(m) => {
                self.map(v, path, &["not"])?;
                match m.get("not") {
                    Some(list) => (true, list, join(path, "not")),
                    None => {
                        self.error(path, "expected a list or {not: [...]}");
                        return None;
                    }
                }
            }
            other => (false, other, path.to_string()),
        };
        let Value::Sequence(items) = list else {
            self.error(
                &list_path,
                format!("expected a list, found {}", describe(list)),
            );
            return None;
        };
        let mut values = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(x) = item(self, it, &format!("{list_path}[{i}]")) {
                values.push(x);
            }
        }
        Some(Selector { negated, values })
    }

    fn nullable_int(&mut self, v: &Value, path: &str) -> Option<Option<i64>> {
        match v {
            Value::Null => Some(None),
            Value::Number(n) if n.as_i64().is_some() => Some(n.as_i64()),
            other => {
                self.error(
                    path,
                    format!("expected an integer or null, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn nullable_string(&mut self, v: &Value, path: &str) -> Option<Option<String>> {
        match v {
            Value::Null => Some(None),
            _ => self.string(v, path).map(Some),
        }
    }

    fn message(&mut self, v: &Value, path: &str) -> Option<Message> {
        let m = self.map(
            v,
            path,
            &[
                "type",
                "message",
                "link",
                "package_name",
                "advisory",
                "cve_id",
                "cve_name",
                "version_range",
                "url",
            ],
        )?;
        let kind = match m.get("type").and_then(Value::as_str) {
            Some("INFO") => MessageType::Info,
            Some("WARNING") => MessageType::Warning,
            Some("ERROR") => MessageType::Error,
            Some(other) => {
                self.error(
                    &join(path, "type"),
                    format!("unknown message type `{other}` (expected INFO, WARNING or ERROR)"),
                );
                return None;
            }
            None => {
                self.error(
                    &join(path, "type"),
                    "missing message type (INFO, WARNING or ERROR)",
                );
                return None;
            }
        };
        let message = match m.get("message") {
            Some(v) => self.string(v, &join(path, "message"))?,
            None => {
                self.error(&join(path, "message"), "missing message text");
                return None;
            }
        };
        let link = match m.get("link") {
            None => Vec::new(),
            Some(v) => {
                let text = self.string(v, &join(path, "link"))?;
                let links: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                for l in &links {
                    let short = l.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    });
                    if !(short || l.starts_with("http://") || l.starts_with("https://")) {
                        self.error(
                            &join(path, "link"),
                            format!("`{l}` is neither an http(s) URL nor a short link id"),
                        );
                    }
                }
                links
            }
        };
        let package_name = match m.get("package_name") {
            Some(v) => Some(self.name(v, &join(path, "package_name"))?),
            None => None,
        };
        let mut extra = BTreeMap::new();
        for key in ["advisory", "cve_id", "cve_name", "version_range", "url"] {
            if let Some(v) = m.get(key) {
                extra.insert(key.to_string(), self.string(v, &join(path, key))?);
            }
        }
        Some(Message {
            kind,
            message,
            link,
            package_name,
            extra,
        })
    }

    fn messages(&mut self, v: &Value, path: &str) -> Vec<Message> {
        let Value::Sequence(items) = v else {
            self.error(
                path,
                format!("expected a list of messages, found {}", describe(v)),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| self.message(it, &format!("{path}[{i}]")))
            .collect()
    }

    fn index_match(&mut self, v: &Value, path: &str) -> Option<IndexMatch> {
        match v {
            Value::Mapping(m) => {
                self.map(v, path, &["not"])?;
                let url = self.string(m.get("not")?, &join(path, "not"))?;
                Some(IndexMatch {
                    negated: true,
                    url: url.trim_end_matches('/').to_string(),
                })
            }
            _ => self.string(v, path).map(|url| IndexMatch {
                negated: false,
                url: url.trim_end_matches('/').to_string(),
            }),
        }
    }

    fn matcher(&mut self, v: &Value, path: &str, name_required: bool) -> Option<PackageMatcher> {
        let m = self.map(v, path, &["name", "version", "index_url", "develop"])?;
        let name = match m.get("name") {
            Some(v) => Some(self.name(v, &join(path, "name"))?),
            None if name_required => {
                self.error(&join(path, "name"), "missing package name");
                return None;
            }
            None => None,
        };
        let version = match m.get("version") {
            Some(v) => Some(self.specifier(v, &join(path, "version"))?),
            None => None,
        };
        let legacy_warned = self
            .warnings
            .last()
            .is_some_and(|w| w.path == join(path, "version") && w.unit == self.unit);
        if let Some(spec) = &version
            && !legacy_warned
            && never_matches(spec)
        {
            self.warning(
                &join(path, "version"),
                format!("`{spec}` can never match (PEP 440 commas mean AND): dead unit"),
            );
        }
        let index_url = match m.get("index_url") {
            Some(v) => Some(self.index_match(v, &join(path, "index_url"))?),
            None => None,
        };
        let develop = match m.get("develop") {
            Some(v) => Some(self.boolean(v, &join(path, "develop"))?),
            None => None,
        };
        Some(PackageMatcher {
            name,
            version,
            index_url,
            develop,
        })
    }

    fn matchers(&mut self, v: &Value, path: &str) -> Vec<PackageMatcher> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| self.matcher(it, &format!("{path}[{i}]"), true))
                .collect(),
            other => {
                self.error(
                    path,
                    format!("expected a list of packages, found {}", describe(other)),
                );
                Vec::new()
            }
        }
    }
}

impl Reader<'_> {
    /// [`Reader::map`] for the file level.
    pub fn map_public<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        self.map(v, path, allowed)
    }

    /// Record an error.
    pub fn error_public(&mut self, path: &str, message: impl Into<String>) {
        self.error(path, message);
    }

    /// Record a warning.
    pub fn warning_public(&mut self, path: &str, message: impl Into<String>) {
        self.warning(path, message);
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Can a specifier set match no version at all? Checked on a probe set of
/// versions built from the specifier's own boundaries.
pub fn never_matches(spec: &VersionSpecifiers) -> bool {
    if spec.is_empty() {
        return false;
    }
    let mut probes: Vec<python::Version> = Vec::new();
    for s in spec.iter() {
        let v = s.version().clone();
        probes.push(v.clone());
        let release = v.release().to_vec();
        let mut up = release.clone();
        if let Some(last) = up.last_mut() {
            *last += 1;
        }
        let mut deeper = release.clone();
        deeper.push(1);
        for r in [up, deeper] {
            probes.push(python::Version::new(r));
        }
        if let Some(first) = release.first()
            && *first > 0
        {
            let mut down = release.clone();
            down[0] -= 1;
            probes.push(python::Version::new(down));
        }
    }
    probes.push(python::Version::new([0]));
    !probes.iter().any(|p| spec.contains(p))
}

/// Parse `should_include`.
pub fn should_include(r: &mut Reader, v: &Value) -> ShouldInclude {
    let mut out = ShouldInclude {
        times: 1,
        ..ShouldInclude::default()
    };
    let Some(m) = r.map(
        v,
        "should_include",
        &[
            "times",
            "adviser_pipeline",
            "dependency_monkey_pipeline",
            "recommendation_types",
            "decision_types",
            "authenticated",
            "labels",
            "library_usage",
            "dependencies",
            "runtime_environments",
        ],
    ) else {
        return out;
    };
    if let Some(v) = m.get("times") {
        match v.as_u64() {
            Some(t @ (0 | 1)) => out.times = t as u8,
            _ => r.error("should_include.times", "expected 0 or 1"),
        }
    }
    for (key, slot) in [
        ("adviser_pipeline", &mut out.adviser_pipeline),
        (
            "dependency_monkey_pipeline",
            &mut out.dependency_monkey_pipeline,
        ),
    ] {
        if let Some(v) = m.get(key) {
            *slot = r
                .boolean(v, &format!("should_include.{key}"))
                .unwrap_or(false);
        }
    }
    if let Some(v) = m.get("recommendation_types") {
        out.recommendation_types =
            r.selector(v, "should_include.recommendation_types", |r, v, p| {
                let text = r.string(v, p)?;
                text.parse::<RecommendationType>()
                    .map_err(|e| r.error(p, e))
                    .ok()
            });
    }
    if let Some(v) = m.get("decision_types") {
        out.decision_types = r.selector(v, "should_include.decision_types", |r, v, p| {
            let text = r.string(v, p)?;
            text.parse::<DecisionType>().map_err(|e| r.error(p, e)).ok()
        });
    }
    if let Some(v) = m.get("authenticated") {
        out.authenticated = r.boolean(v, "should_include.authenticated");
    }
    if let Some(v) = m.get("labels") {
        match v {
            Value::Mapping(map) => {
                for (k, val) in map {
                    let key = k.as_str().unwrap_or("?").to_string();
                    if let Some(val) = r.string(val, &format!("should_include.labels.{key}")) {
                        out.labels.insert(key, val);
                    }
                }
            }
            other => r.error(
                "should_include.labels",
                format!("expected a map of label = value, found {}", describe(other)),
            ),
        }
    }
    if let Some(v) = m.get("library_usage") {
        match v {
            Value::Mapping(map) => {
                for (k, syms) in map {
                    let key = k.as_str().unwrap_or("?").to_string();
                    let path = format!("should_include.library_usage.{key}");
                    match syms {
                        Value::Sequence(items) if !items.is_empty() => {
                            let list = items
                                .iter()
                                .enumerate()
                                .filter_map(|(i, s)| r.string(s, &format!("{path}[{i}]")))
                                .collect();
                            out.library_usage.insert(key, list);
                        }
                        _ => r.error(&path, "expected a non-empty list of symbols"),
                    }
                }
            }
            other => r.error(
                "should_include.library_usage",
                format!("expected a map, found {}", describe(other)),
            ),
        }
    }
    if let Some(v) = m.get("dependencies")
        && let Some(map) = r.map(
            v,
            "should_include.dependencies",
            &["boots", "pseudonyms", "sieves", "steps", "strides", "wraps"],
        )
    {
        for (k, names) in map {
            let key = k.as_str().unwrap_or("?").to_string();
            let path = format!("should_include.dependencies.{key}");
            match names {
                Value::Sequence(items) => {
                    let list = items
                        .iter()
                        .enumerate()
                        .filter_map(|(i, s)| r.string(s, &format!("{path}[{i}]")))
                        .collect();
                    out.dependencies.insert(key, list);
                }
                other => r.error(
                    &path,
                    format!("expected a list of unit names, found {}", describe(other)),
                ),
            }
        }
    }
    if let Some(v) = m.get("runtime_environments") {
        out.runtime_environments = runtime(r, v);
    }
    out
}

fn runtime(r: &mut Reader, v: &Value) -> Option<RuntimeMatch> {
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
        let path = format!("{base}.operating_systems");
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
                out.operating_systems = Some(list);
            }
            other => r.error(&path, format!("expected a list, found {}", describe(other))),
        }
    }
    if let Some(v) = m.get("hardware") {
        let path = format!("{base}.hardware");
        let entries: Vec<&Value> = match v {
            Value::Sequence(items) if !items.is_empty() => items.iter().collect(),
            Value::Mapping(_) => vec![v],
            other => {
                r.error(
                    &path,
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
        out.hardware = Some(list);
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
        out.rpm_packages = r.selector(v, &format!("{base}.rpm_packages"), |r, v, p| {
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
        });
    }
    if let Some(v) = m.get("python_packages") {
        out.python_packages = r.selector(v, &format!("{base}.python_packages"), |r, v, p| {
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
        });
    }
    Some(out)
}

/// Parse `match` for a unit kind.
pub fn matches(r: &mut Reader, kind: UnitKind, v: Option<&Value>) -> Vec<MatchEntry> {
    let required = !matches!(kind, UnitKind::Boot | UnitKind::Wrap);
    let Some(v) = v else {
        if required {
            r.error(
                "match",
                format!("`{}` units need a match section", kind.as_str()),
            );
        }
        return Vec::new();
    };
    let entries: Vec<(String, &Value)> = match v {
        Value::Sequence(items) => {
            if kind == UnitKind::StepSkipPackage {
                r.error("match", "step.SkipPackage takes a single map, not a list");
                return Vec::new();
            }
            if items.is_empty() {
                r.error("match", "expected a map or a non-empty list of maps");
            }
            items
                .iter()
                .enumerate()
                .map(|(i, it)| (format!("match[{i}]"), it))
                .collect()
        }
        other => vec![("match".to_string(), other)],
    };
    let mut out = Vec::new();
    for (path, entry) in entries {
        let allowed: &[&str] = match kind {
            UnitKind::Boot | UnitKind::SieveSkipPackage => &["package_name"],
            UnitKind::Pseudonym | UnitKind::Sieve => &["package_version"],
            UnitKind::Step | UnitKind::StepSkipPackage | UnitKind::StepAddPackage => {
                &["package_version", "state"]
            }
            UnitKind::StepGroup => &["group"],
            UnitKind::Stride | UnitKind::Wrap | UnitKind::WrapGhReleaseNotes => &["state"],
        };
        let Some(m) = r.map(entry, &path, allowed) else {
            continue;
        };
        let mut e = MatchEntry::default();
        if let Some(v) = m.get("package_name") {
            e.package_name = r.name(v, &join(&path, "package_name"));
        } else if kind == UnitKind::SieveSkipPackage {
            r.error(&join(&path, "package_name"), "missing package_name");
        }
        if let Some(v) = m.get("package_version") {
            e.package_version = r.matcher(
                v,
                &join(&path, "package_version"),
                kind == UnitKind::Pseudonym,
            );
        } else if matches!(
            kind,
            UnitKind::Pseudonym
                | UnitKind::Sieve
                | UnitKind::Step
                | UnitKind::StepSkipPackage
                | UnitKind::StepAddPackage
        ) {
            r.error(&join(&path, "package_version"), "missing package_version");
        }
        if let Some(v) = m.get("state") {
            let sp = join(&path, "state");
            if let Some(s) = r.map(
                v,
                &sp,
                &[
                    "resolved_dependencies",
                    "package_version_from",
                    "package_version_from_allow_other",
                ],
            ) {
                let mut st = StateMatch::default();
                if let Some(v) = s.get("resolved_dependencies") {
                    st.resolved_dependencies = r.matchers(v, &join(&sp, "resolved_dependencies"));
                }
                if let Some(v) = s.get("package_version_from") {
                    st.package_version_from = r.matchers(v, &join(&sp, "package_version_from"));
                }
                if let Some(v) = s.get("package_version_from_allow_other") {
                    st.package_version_from_allow_other = r
                        .boolean(v, &join(&sp, "package_version_from_allow_other"))
                        .unwrap_or(false);
                }
                e.state = Some(st);
            }
        } else if matches!(kind, UnitKind::Stride | UnitKind::WrapGhReleaseNotes) {
            r.error(&join(&path, "state"), "missing state.resolved_dependencies");
        }
        if kind == UnitKind::WrapGhReleaseNotes
            && let Some(st) = &e.state
            && st.resolved_dependencies.len() != 1
        {
            r.error(
                &join(&path, "state.resolved_dependencies"),
                "wrap.GHReleaseNotes matches exactly one package",
            );
        }
        if let Some(v) = m.get("group") {
            let gp = join(&path, "group");
            match v {
                Value::Sequence(items) if items.len() >= 2 => {
                    for (i, it) in items.iter().enumerate() {
                        let ip = format!("{gp}[{i}]");
                        if let Some(g) = r.map(it, &ip, &["package_version"]) {
                            match g.get("package_version") {
                                Some(pv) => e.group.extend(r.matcher(
                                    pv,
                                    &join(&ip, "package_version"),
                                    true,
                                )),
                                None => r.error(
                                    &join(&ip, "package_version"),
                                    "missing package_version",
                                ),
                            }
                        }
                    }
                }
                _ => r.error(&gp, "expected a list of at least two packages"),
            }
        } else if kind == UnitKind::StepGroup {
            r.error(&join(&path, "group"), "missing group");
        }
        out.push(e);
    }
    out
}

/// Parse `run` for a unit kind.
pub fn run(r: &mut Reader, kind: UnitKind, v: Option<&Value>) -> Run {
    let mut out = Run::default();
    let allowed: &[&str] = match kind {
        UnitKind::Boot => &["log", "stack_info", "not_acceptable", "eager_stop_pipeline"],
        UnitKind::Pseudonym => &["log", "stack_info", "yield"],
        UnitKind::Sieve | UnitKind::SieveSkipPackage => &["log", "stack_info"],
        UnitKind::Step => &[
            "log",
            "stack_info",
            "score",
            "justification",
            "not_acceptable",
            "eager_stop_pipeline",
            "multi_package_resolution",
        ],
        UnitKind::StepSkipPackage => &["log", "stack_info", "multi_package_resolution"],
        UnitKind::StepAddPackage => &[
            "log",
            "stack_info",
            "package_version",
            "multi_package_resolution",
        ],
        UnitKind::StepGroup => &[
            "log",
            "stack_info",
            "score",
            "justification",
            "not_acceptable",
            "eager_stop_pipeline",
        ],
        UnitKind::Stride => &["log", "stack_info", "not_acceptable", "eager_stop_pipeline"],
        UnitKind::Wrap => &[
            "log",
            "stack_info",
            "justification",
            "advised_manifest_changes",
        ],
        UnitKind::WrapGhReleaseNotes => &["release_notes", "log", "stack_info"],
    };
    let Some(v) = v else {
        if matches!(
            kind,
            UnitKind::Pseudonym
                | UnitKind::Wrap
                | UnitKind::WrapGhReleaseNotes
                | UnitKind::StepAddPackage
        ) {
            r.error(
                "run",
                format!("`{}` units need a run section", kind.as_str()),
            );
        }
        return out;
    };
    let empty = Mapping::new();
    let m = r.map(v, "run", allowed).unwrap_or(&empty);
    if let Some(v) = m.get("log") {
        out.log = r.message(v, "run.log");
    }
    if let Some(v) = m.get("stack_info") {
        out.stack_info = r.messages(v, "run.stack_info");
    }
    if let Some(v) = m.get("justification") {
        out.justification = r.messages(v, "run.justification");
    }
    for (key, slot) in [
        ("not_acceptable", &mut out.not_acceptable),
        ("eager_stop_pipeline", &mut out.eager_stop_pipeline),
    ] {
        if let Some(v) = m.get(key) {
            *slot = r.string(v, &format!("run.{key}"));
        }
    }
    if let Some(v) = m.get("score") {
        match v {
            Value::Number(n) if n.is_f64() => {
                let s = n.as_f64().unwrap_or(0.0);
                if !(-1.0..=1.0).contains(&s) {
                    r.error("run.score", format!("score {s} is outside [-1, 1]"));
                }
                out.score = Some(s.clamp(-1.0, 1.0));
            }
            Value::Number(n) => {
                r.error("run.score", format!("score must be a float (write {n}.0)"))
            }
            other => r.error(
                "run.score",
                format!("expected a float, found {}", describe(other)),
            ),
        }
    }
    if let Some(v) = m.get("multi_package_resolution") {
        out.multi_package_resolution = r
            .boolean(v, "run.multi_package_resolution")
            .unwrap_or(false);
    }
    if kind == UnitKind::StepGroup {
        out.multi_package_resolution = true;
    }
    if let Some(v) = m.get("advised_manifest_changes") {
        out.advised_manifest_changes = Some(v.clone());
    }
    if out.not_acceptable.is_some() && out.eager_stop_pipeline.is_some() {
        r.error(
            "run",
            "not_acceptable and eager_stop_pipeline exclude each other",
        );
    }
    if (out.not_acceptable.is_some() || out.eager_stop_pipeline.is_some())
        && (out.score.is_some() || !out.justification.is_empty())
    {
        r.error(
            "run",
            "not_acceptable / eager_stop_pipeline exclude score and justification",
        );
    }
    if kind == UnitKind::Pseudonym {
        match m.get("yield") {
            Some(v) => {
                if let Some(y) = r.map(
                    v,
                    "run.yield",
                    &["yield_matched_version", "package_version"],
                ) {
                    let matched = y
                        .get("yield_matched_version")
                        .and_then(|v| r.boolean(v, "run.yield.yield_matched_version"))
                        .unwrap_or(false);
                    if let Some(pv) = y.get("package_version").and_then(|pv| {
                        r.map(
                            pv,
                            "run.yield.package_version",
                            &["name", "locked_version", "index_url"],
                        )
                    }) {
                        let name = r.name(
                            pv.get("name").unwrap_or(&Value::Null),
                            "run.yield.package_version.name",
                        );
                        let locked = pv.get("locked_version").and_then(|v| {
                            r.specifier(v, "run.yield.package_version.locked_version")
                        });
                        if matched && locked.is_some() {
                            r.error(
                                "run.yield",
                                "yield_matched_version and locked_version exclude each other",
                            );
                        }
                        let index_url = pv
                            .get("index_url")
                            .and_then(|v| r.index_match(v, "run.yield.package_version.index_url"));
                        if let Some(name) = name {
                            out.pseudonym = Some(PseudonymYield {
                                yield_matched_version: matched,
                                name,
                                locked_version: locked,
                                index_url,
                            });
                        }
                    } else if y.get("package_version").is_none() {
                        r.error("run.yield.package_version", "missing package_version");
                    }
                }
            }
            None => r.error("run.yield", "pseudonyms need run.yield"),
        }
    }
    if kind == UnitKind::StepAddPackage {
        match m.get("package_version").and_then(|pv| {
            r.map(
                pv,
                "run.package_version",
                &["name", "locked_version", "index_url", "develop"],
            )
        }) {
            Some(pv) => {
                let name = r.name(
                    pv.get("name").unwrap_or(&Value::Null),
                    "run.package_version.name",
                );
                let locked = pv
                    .get("locked_version")
                    .and_then(|v| r.string(v, "run.package_version.locked_version"));
                let index = pv
                    .get("index_url")
                    .and_then(|v| r.string(v, "run.package_version.index_url"));
                let develop = pv
                    .get("develop")
                    .and_then(|v| r.boolean(v, "run.package_version.develop"))
                    .unwrap_or(false);
                match (name, locked) {
                    (Some(name), Some(locked_version)) => {
                        out.add_package = Some(AddPackage {
                            name,
                            locked_version,
                            index_url: index,
                            develop,
                        })
                    }
                    _ => r.error("run.package_version", "needs name and locked_version"),
                }
            }
            None => r.error(
                "run.package_version",
                "step.AddPackage needs run.package_version",
            ),
        }
    }
    if kind == UnitKind::WrapGhReleaseNotes {
        match m.get("release_notes").and_then(|v| {
            r.map(
                v,
                "run.release_notes",
                &["organization", "repository", "tag_version_prefix"],
            )
        }) {
            Some(rn) => {
                let org = r.string(
                    rn.get("organization").unwrap_or(&Value::Null),
                    "run.release_notes.organization",
                );
                let repo = r.string(
                    rn.get("repository").unwrap_or(&Value::Null),
                    "run.release_notes.repository",
                );
                let prefix = rn
                    .get("tag_version_prefix")
                    .and_then(|v| r.string(v, "run.release_notes.tag_version_prefix"));
                if let (Some(organization), Some(repository)) = (org, repo) {
                    out.release_notes = Some(ReleaseNotes {
                        organization,
                        repository,
                        tag_version_prefix: prefix,
                    });
                }
            }
            None => r.error(
                "run.release_notes",
                "wrap.GHReleaseNotes needs run.release_notes",
            ),
        }
    }
    out
}

/// Parse one unit (`name`, `type`, `should_include`, `metadata`, `match`, `run`).
pub fn unit(r: &mut Reader, list: &str, v: &Value, namespace: &str, file: &str) -> Option<Unit> {
    let m = r.map(
        v,
        "",
        &["name", "type", "should_include", "metadata", "match", "run"],
    )?;
    let name = r.string(m.get("name").unwrap_or(&Value::Null), "name")?;
    r.unit = format!("{namespace}.{name}");
    let type_text = r.string(m.get("type").unwrap_or(&Value::Null), "type")?;
    let Some(kind) = UnitKind::parse(list, &type_text) else {
        r.error(
            "type",
            format!("unit type `{type_text}` does not belong in `{list}`"),
        );
        return None;
    };
    let should_include = match m.get("should_include") {
        Some(v) => should_include(r, v),
        None => {
            r.error("should_include", "missing should_include (use {} for none)");
            ShouldInclude {
                times: 1,
                ..ShouldInclude::default()
            }
        }
    };
    let matches = matches(r, kind, m.get("match"));
    let run = run(r, kind, m.get("run"));
    Some(Unit {
        name: r.unit.clone(),
        kind,
        file: file.to_string(),
        should_include,
        matches,
        run,
    })
}
