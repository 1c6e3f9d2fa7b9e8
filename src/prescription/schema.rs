//! The prescription v1 model: units with their `should_include`, `match` and
//! `run` sections, parsed from YAML values with a key path for every error.
//!
//! Absent and `null` stay distinct where Thoth's documentation gives `null`
//! a meaning (`cuda_version: null` = "no CUDA"): see [`VersionCheck`].

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::policy::{DecisionType, RecommendationType};
use crate::python::VersionSpecifiers;

/// Kinds of units, including the specialised ones.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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

    pub(crate) fn parse(list: &str, text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text && k.list() == list)
    }
}

/// A list of values, or `{not: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(bound(deserialize = "T: serde::Deserialize<'de>"))]
pub struct Selector<T> {
    /// `true` for `{not: …}`.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub negated: bool,
    /// The values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<T>,
}

impl VersionCheck {
    /// No condition.
    pub fn is_any(&self) -> bool {
        matches!(self, Self::Any)
    }
}

impl<T: PartialEq> Selector<T> {
    /// Does `value` pass?
    pub fn admits(&self, value: &T) -> bool {
        self.values.contains(value) != self.negated
    }
}

/// `skip_serializing_if` for `false` fields.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// A version requirement on the runtime environment.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum VersionCheck {
    /// Key absent: anything matches.
    #[default]
    Any,
    /// `null`: the component must be absent from the environment
    /// (thoth-rs follows Thoth's documentation here, not its code).
    NotPresent,
    /// A specifier the present value must satisfy.
    Spec(#[serde(with = "crate::python::spec_text")] VersionSpecifiers),
}

/// One `operating_systems` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct OsMatch {
    /// OS name, `None` = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// OS version, `None` = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// One `hardware` alternative.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct HardwareMatch {
    /// CPU families (`null` entry = unknown family).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_families: Option<Selector<Option<i64>>>,
    /// CPU models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_models: Option<Selector<Option<i64>>>,
    /// CPU flags that must (or, negated, must not) be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_flags: Option<Selector<String>>,
    /// GPU models (`null` entry = no GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_models: Option<Selector<Option<String>>>,
}

/// An RPM package requirement on the base image.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RpmMatch {
    /// Fields that must equal (package_name, package_version, release, epoch, arch, src, package_identifier).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// A Python package requirement on the base image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PythonPackageMatch {
    /// Normalised name.
    pub name: String,
    /// Version specifier.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::python::opt_spec_text"
    )]
    pub version: Option<VersionSpecifiers>,
    /// Regular-expression-like location (kept as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// `should_include.runtime_environments`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RuntimeMatch {
    /// Any entry must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_systems: Option<Vec<OsMatch>>,
    /// Alternatives: any entry must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<Vec<HardwareMatch>>,
    /// Python version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub python_version: VersionCheck,
    /// CUDA version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub cuda_version: VersionCheck,
    /// cuDNN version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub cudnn_version: VersionCheck,
    /// OpenBLAS version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub openblas_version: VersionCheck,
    /// Open MPI version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub openmpi_version: VersionCheck,
    /// MKL version.
    #[serde(default, skip_serializing_if = "VersionCheck::is_any")]
    pub mkl_version: VersionCheck,
    /// Platforms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Selector<String>>,
    /// Base images (`image[:tag]`, tag may end `*`; `None` = no image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_images: Option<Selector<Option<String>>>,
    /// ABI symbols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abi: Option<Selector<String>>,
    /// RPM packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm_packages: Option<Selector<RpmMatch>>,
    /// Python packages in the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_packages: Option<Selector<PythonPackageMatch>>,
}

/// `should_include`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ShouldInclude {
    /// 0 disables the unit.
    pub times: u8,
    /// Included in advise runs.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub adviser_pipeline: bool,
    /// Included in Dependency Monkey runs.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub dependency_monkey_pipeline: bool,
    /// Recommendation types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation_types: Option<Selector<RecommendationType>>,
    /// Decision types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_types: Option<Selector<DecisionType>>,
    /// Only (un)authenticated runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<bool>,
    /// Any pair must match a run label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Library → symbols used.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub library_usage: BTreeMap<String, Vec<String>>,
    /// Units that must already be included, by list (`boots` …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dependencies: BTreeMap<String, Vec<String>>,
    /// Environment conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_environments: Option<Box<RuntimeMatch>>,
}

/// An `index_url` condition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexMatch {
    /// `{not: url}`.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub negated: bool,
    /// URL (trailing `/` removed).
    pub url: String,
}

/// A `package_version` matcher.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PackageMatcher {
    /// Normalised name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Version specifier.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::python::opt_spec_text"
    )]
    pub version: Option<VersionSpecifiers>,
    /// Index condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_url: Option<IndexMatch>,
    /// Development dependency?
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub develop: Option<bool>,
}

/// `match.state`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct StateMatch {
    /// All must be resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<PackageMatcher>,
    /// The package was introduced by one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_version_from: Vec<PackageMatcher>,
    /// … or by others as well.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub package_version_from_allow_other: bool,
}

/// One `match` alternative.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MatchEntry {
    /// `package_name` (boots, SkipPackage sieves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// `package_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<PackageMatcher>,
    /// `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateMatch>,
    /// `group` (step.Group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group: Vec<PackageMatcher>,
}

/// Message severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Severity.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Text.
    pub message: String,
    /// Links (URLs or short ids; several when the source had several).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<String>,
    /// Package the message is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// Further keys kept as given (advisory, cve_id, version_range, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", flatten)]
    pub extra: BTreeMap<String, String>,
}

/// A pseudonym's `yield`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PseudonymYield {
    /// Yield the matched version of the alternative.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub yield_matched_version: bool,
    /// Alternative package name.
    pub name: String,
    /// `==X` pin of the alternative.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::python::opt_spec_text"
    )]
    pub locked_version: Option<VersionSpecifiers>,
    /// Index of the alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_url: Option<IndexMatch>,
}

/// `step.AddPackage`'s package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddPackage {
    /// Name.
    pub name: String,
    /// `==X`.
    pub locked_version: String,
    /// Index URL; `None` = the index the snapshot was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_url: Option<String>,
    /// Development dependency.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub develop: bool,
}

/// `wrap.GHReleaseNotes`'s `release_notes`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReleaseNotes {
    /// GitHub organisation.
    pub organization: String,
    /// Repository.
    pub repository: String,
    /// Prefix of the tag before the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_version_prefix: Option<String>,
}

/// `run`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Run {
    /// Refuse (boot), reject (step), discard (stride) with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_acceptable: Option<String>,
    /// Stop the pipeline gracefully with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eager_stop_pipeline: Option<String>,
    /// Score added by a step, in [-1, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Justifications (steps, wraps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub justification: Vec<Message>,
    /// Report-level messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack_info: Vec<Message>,
    /// A log line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Box<Message>>,
    /// Steps also run when the package is already resolved.
    #[serde(default, skip_serializing_if = "crate::prescription::schema::is_false")]
    pub multi_package_resolution: bool,
    /// Opaque manifest changes (wraps).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "yaml_text")]
    pub advised_manifest_changes: Option<Box<Value>>,
    /// Pseudonym alternative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonym: Option<Box<PseudonymYield>>,
    /// Package to add (step.AddPackage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_package: Option<Box<AddPackage>>,
    /// Release notes (wrap.GHReleaseNotes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_notes: Option<Box<ReleaseNotes>>,
}

/// A compiled unit.
#[derive(Clone)]
pub struct Unit {
    /// `<prescription name>.<unit name>`.
    pub name: String,
    /// Kind.
    pub kind: UnitKind,
    /// File it came from.
    pub file: String,
    /// Applicability.
    pub should_include: ShouldInclude,
    /// `match` and `run`, decoded on first use when the unit comes from
    /// the compiled cache.
    body: LazyBody,
}

/// A unit's `match` and `run`.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Body {
    /// Alternatives (empty = no `match`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<MatchEntry>,
    /// Effects.
    pub run: Run,
    /// Set on a body that could not be decoded: the unit never applies.
    #[serde(skip)]
    pub inert: bool,
}

/// Encoded bodies shared by many units (one block of the compiled cache),
/// decompressed when the first of them is used.
pub trait BodySource: Send + Sync {
    /// The block's decoded text, or `None` if it cannot be decoded.
    fn text(&self) -> Option<&[u8]>;
}

#[derive(Clone)]
struct LazyBody {
    ready: std::sync::OnceLock<Box<Body>>,
    source: Option<(std::sync::Arc<dyn BodySource>, std::ops::Range<usize>)>,
}

impl Unit {
    /// A unit with its body at hand.
    pub fn new(
        name: String,
        kind: UnitKind,
        file: String,
        should_include: ShouldInclude,
        matches: Vec<MatchEntry>,
        run: Run,
    ) -> Self {
        let unit = Self::with_source(name, kind, file, should_include, None);
        let _ = unit.body.ready.set(Box::new(Body {
            matches,
            run,
            inert: false,
        }));
        unit
    }

    /// A unit whose body is the JSON text at `range` of `source`'s block.
    pub fn encoded(
        name: String,
        kind: UnitKind,
        file: String,
        should_include: ShouldInclude,
        source: std::sync::Arc<dyn BodySource>,
        range: std::ops::Range<usize>,
    ) -> Self {
        Self::with_source(name, kind, file, should_include, Some((source, range)))
    }

    /// A unit whose body is not decoded yet.
    fn with_source(
        name: String,
        kind: UnitKind,
        file: String,
        should_include: ShouldInclude,
        source: Option<(std::sync::Arc<dyn BodySource>, std::ops::Range<usize>)>,
    ) -> Self {
        Self {
            name,
            kind,
            file,
            should_include,
            body: LazyBody {
                ready: std::sync::OnceLock::new(),
                source,
            },
        }
    }

    /// `match` and `run`, decoded now if they were not yet.
    pub fn body(&self) -> &Body {
        self.body.ready.get_or_init(|| {
            let decoded = self.body.source.as_ref().and_then(|(source, range)| {
                let text = source.text()?.get(range.clone())?;
                serde_json::from_slice::<Body>(text).ok()
            });
            Box::new(decoded.unwrap_or_else(|| {
                tracing::error!(
                    "prescription unit {} could not be read from the compiled cache; it is ignored",
                    self.name
                );
                Body {
                    inert: true,
                    ..Body::default()
                }
            }))
        })
    }

    /// Alternatives (empty = no `match`).
    pub fn matches(&self) -> &[MatchEntry] {
        &self.body().matches
    }

    /// Effects.
    pub fn run(&self) -> &Run {
        &self.body().run
    }

    /// Whether the unit can apply at all (false for an unreadable body).
    pub fn usable(&self) -> bool {
        !self.body().inert
    }
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("file", &self.file)
            .field("should_include", &self.should_include)
            .field("body", self.body())
            .finish()
    }
}

impl PartialEq for Unit {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.file == other.file
            && self.should_include == other.should_include
            && self.body() == other.body()
    }
}

/// A problem found while compiling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// `Option<Value>` stored as YAML text (the compiled-prescription cache
/// is JSON, which cannot hold every YAML value).
mod yaml_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_yaml::Value;

    pub fn serialize<S: Serializer>(v: &Option<Box<Value>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            None => s.serialize_none(),
            Some(v) => {
                let text = serde_yaml::to_string(v).map_err(serde::ser::Error::custom)?;
                s.serialize_some(&text)
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<Value>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| {
                serde_yaml::from_str(&t)
                    .map(Box::new)
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}
