//! Evaluating units: `should_include` against a run's context, and matchers
//! against package versions.
//!
//! Deliberate differences from Thoth's code (its documented intent is
//! followed): hardware entries are alternatives (any may match); a version
//! key set to `null` means "not present" (`cuda_version: null` matches only
//! environments without CUDA); `library_usage` matches when any used symbol
//! fits (`lib.*` is a prefix); ABI, RPM and Python-package conditions are
//! all evaluated.

use std::collections::{BTreeMap, BTreeSet};

use super::schema::{
    HardwareMatch, PackageMatcher, RuntimeMatch, Selector, ShouldInclude, Unit, VersionCheck,
};
use crate::environment::target::Stated;
use crate::environment::{Target, TargetEnvironment};
use crate::policy::{DecisionType, RecommendationType};
use crate::python::{Version, parse_version};

/// Which workflow a unit would run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    /// `advise`.
    Adviser,
    /// `dependency-monkey`.
    DependencyMonkey,
}

/// What is known about the base image, as units see it (see
/// [`crate::environment::ImageFacts`]).
pub use crate::environment::ImageFacts;

/// Everything `should_include` looks at.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Workflow.
    pub workflow: Workflow,
    /// Recommendation type (advise).
    pub recommendation_type: RecommendationType,
    /// Decision type (Dependency Monkey).
    pub decision_type: DecisionType,
    /// Run labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The target, parsed.
    pub target: &'a Target,
    /// Authenticated run?
    pub authenticated: bool,
    /// Library → used symbols, when static analysis was supplied.
    pub library_usage: Option<&'a BTreeMap<String, Vec<String>>>,
    /// Base image analysis, when available.
    pub image: Option<&'a ImageFacts>,
    /// Names of units already included.
    pub included: &'a BTreeSet<String>,
}

fn admits<T: PartialEq>(sel: &Option<Selector<T>>, value: &T) -> bool {
    sel.as_ref().is_none_or(|s| s.admits(value))
}

fn version_ok(check: &VersionCheck, value: &Stated) -> bool {
    match (check, value) {
        (VersionCheck::Any, _) | (VersionCheck::NotPresent, Stated::Absent) => true,
        (VersionCheck::Spec(spec), Stated::Version(v)) => spec.contains(v),
        (VersionCheck::NotPresent | VersionCheck::Spec(_), _) => false,
    }
}

/// A list of required things, or `{not: …}` of forbidden ones: all listed
/// present, or (negated) none present.
fn holds<T>(sel: &Selector<T>, present: impl Fn(&T) -> bool) -> bool {
    if sel.negated {
        !sel.values.iter().any(present)
    } else {
        sel.values.iter().all(present)
    }
}

fn hardware_ok(hw: &HardwareMatch, env: &TargetEnvironment) -> bool {
    // Unknown CPU flags (none detected or configured) match no flag
    // condition, negated or not: "no AVX" must not be assumed from silence.
    let flags_ok = hw
        .cpu_flags
        .as_ref()
        .is_none_or(|sel| !env.cpu_flags.is_empty() && holds(sel, |f| env.cpu_flags.contains(f)));
    admits(&hw.cpu_families, &env.cpu_family)
        && admits(&hw.cpu_models, &env.cpu_model)
        && admits(&hw.gpu_models, &env.gpu_model)
        && flags_ok
}

fn image_matches(pattern: &str, image: &str) -> bool {
    let (p_name, p_tag) = pattern
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or((pattern, None), |(n, t)| (n, Some(t)));
    let (i_name, i_tag) = image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or((image, None), |(n, t)| (n, Some(t)));
    if p_name != i_name {
        return false;
    }
    match (p_tag, i_tag) {
        (None, _) => true,
        (Some(p), Some(i)) => match p.strip_suffix('*') {
            Some(prefix) => {
                i.starts_with(prefix)
                    || i.trim_start_matches('v')
                        .starts_with(prefix.trim_start_matches('v'))
            }
            None => p == i || p.trim_start_matches('v') == i.trim_start_matches('v'),
        },
        (Some(_), None) => false,
    }
}

fn runtime_ok(rt: &RuntimeMatch, ctx: &Context) -> bool {
    let env = &ctx.target.environment;
    let versions = &ctx.target.versions;
    if let Some(oses) = &rt.operating_systems {
        let ok = oses.iter().any(|os| {
            let name_ok = os.name.as_ref().is_none_or(|n| {
                env.os_name
                    .as_ref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(n))
            });
            let version_ok = os.version.as_ref().is_none_or(|v| {
                env.os_version
                    .as_ref()
                    .is_some_and(|e| e == v || e.starts_with(&format!("{v}.")))
            });
            name_ok && version_ok
        });
        if !ok {
            return false;
        }
    }
    if let Some(alternatives) = &rt.hardware
        && !alternatives.iter().any(|hw| hardware_ok(hw, env))
    {
        return false;
    }
    if !(version_ok(&rt.python_version, &versions.python)
        && version_ok(&rt.cuda_version, &versions.cuda)
        && version_ok(&rt.cudnn_version, &versions.cudnn)
        && version_ok(&rt.openblas_version, &versions.openblas)
        && version_ok(&rt.openmpi_version, &versions.openmpi)
        && version_ok(&rt.mkl_version, &versions.mkl))
    {
        return false;
    }
    if !admits(&rt.platforms, &env.platform) {
        return false;
    }
    if let Some(sel) = &rt.base_images {
        let hit = sel.values.iter().any(|p| match (p, &env.base_image) {
            (None, None) => true,
            (Some(p), Some(img)) => image_matches(p, img),
            _ => false,
        });
        if hit == sel.negated {
            return false;
        }
    }
    let image_sel = rt.abi.is_some() || rt.rpm_packages.is_some() || rt.python_packages.is_some();
    if image_sel {
        let Some(image) = ctx.image else { return false };
        if rt
            .abi
            .as_ref()
            .is_some_and(|sel| !holds(sel, |s| image.abi.contains(s)))
        {
            return false;
        }
        if let Some(sel) = &rt.rpm_packages {
            if image.system_packages_unknown {
                return false;
            }
            let present = |m: &super::schema::RpmMatch| {
                image
                    .rpm_packages
                    .iter()
                    .any(|rpm| m.fields.iter().all(|(k, v)| rpm.get(k) == Some(v)))
            };
            if !holds(sel, present) {
                return false;
            }
        }
        if let Some(sel) = &rt.python_packages {
            let present = |m: &super::schema::PythonPackageMatch| {
                image.python_packages.iter().any(|(n, v, loc)| {
                    n == &m.name
                        && m.version
                            .as_ref()
                            .is_none_or(|s| parse_version(v).is_ok_and(|v| s.contains(&v)))
                        && m.location.as_ref().is_none_or(|l| {
                            l == loc || (l.ends_with(".*") && loc.starts_with(&l[..l.len() - 2]))
                        })
                })
            };
            if !holds(sel, present) {
                return false;
            }
        }
    }
    true
}

fn library_ok(
    wanted: &BTreeMap<String, Vec<String>>,
    used: Option<&BTreeMap<String, Vec<String>>>,
) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let Some(used) = used else { return false };
    wanted.iter().all(|(lib, symbols)| {
        used.get(lib).is_some_and(|have| {
            symbols.iter().any(|s| match s.strip_suffix('*') {
                Some(prefix) => have.iter().any(|h| h.starts_with(prefix)),
                None => have.contains(s),
            })
        })
    })
}

/// Should the unit be part of a run in `ctx`?
pub fn should_include(unit: &Unit, ctx: &Context) -> bool {
    let s: &ShouldInclude = &unit.should_include;
    if s.times == 0 {
        return false;
    }
    let pipeline_ok = match ctx.workflow {
        Workflow::Adviser => {
            s.adviser_pipeline && admits(&s.recommendation_types, &ctx.recommendation_type)
        }
        Workflow::DependencyMonkey => {
            s.dependency_monkey_pipeline && admits(&s.decision_types, &ctx.decision_type)
        }
    };
    if !pipeline_ok {
        return false;
    }
    if s.authenticated.is_some_and(|a| a != ctx.authenticated) {
        return false;
    }
    if !s.labels.is_empty() && !s.labels.iter().any(|(k, v)| ctx.labels.get(k) == Some(v)) {
        return false;
    }
    if !library_ok(&s.library_usage, ctx.library_usage) {
        return false;
    }
    if !s
        .dependencies
        .values()
        .flatten()
        .all(|d| ctx.included.contains(d))
    {
        return false;
    }
    s.runtime_environments
        .as_ref()
        .is_none_or(|rt| runtime_ok(rt, ctx))
}

/// A package version as units see it.
#[derive(Debug, Clone)]
pub struct PackageRef<'a> {
    /// Normalised name.
    pub name: &'a str,
    /// Version.
    pub version: &'a Version,
    /// Index URL (trailing `/` removed).
    pub index_url: &'a str,
    /// Development dependency?
    pub develop: bool,
}

/// Does a matcher admit the package? Pre-releases are admitted whenever the
/// specifier contains them (as Thoth did for sieves and pseudonyms).
pub fn matcher_admits(m: &PackageMatcher, p: &PackageRef) -> bool {
    m.name.as_deref().is_none_or(|n| n == p.name)
        && m.version.as_ref().is_none_or(|s| s.contains(p.version))
        && m.index_url
            .as_ref()
            .is_none_or(|i| (i.url == p.index_url.trim_end_matches('/')) != i.negated)
        && m.develop.is_none_or(|d| d == p.develop)
}

/// Does any `match` alternative's `package_version` admit the package?
pub fn package_matches(unit: &Unit, p: &PackageRef) -> bool {
    unit.matches().iter().any(|m| {
        m.package_version
            .as_ref()
            .is_some_and(|pv| matcher_admits(pv, p))
    })
}

/// Who brought a package into the stack: the resolved releases that
/// require it, and whether the project itself does.
#[derive(Debug, Clone, Copy)]
pub struct Introducers<'a> {
    /// Resolved packages whose requirements name it.
    pub by: &'a [PackageRef<'a>],
    /// Required by the project.
    pub direct: bool,
}

/// `state.package_version_from`: the package was brought in by a resolved
/// release one of the matchers admits; unless
/// `package_version_from_allow_other`, by nothing else (the project
/// included). Holds trivially when the list is empty; never when who
/// brought it in is not known.
fn introduced_as_wanted(
    state: &super::schema::StateMatch,
    introducers: Option<&Introducers>,
) -> bool {
    if state.package_version_from.is_empty() {
        return true;
    }
    let Some(i) = introducers else {
        return false;
    };
    let listed = |r: &PackageRef| {
        state
            .package_version_from
            .iter()
            .any(|m| matcher_admits(m, r))
    };
    i.by.iter().any(listed)
        && (state.package_version_from_allow_other || (!i.direct && i.by.iter().all(listed)))
}

/// A step's `match`: an alternative whose `package_version` admits the
/// package added and whose `state` holds (resolved dependencies present;
/// `package_version_from` checked against `introducers`).
pub fn step_matches(
    unit: &Unit,
    package: Option<&PackageRef>,
    resolved: &[PackageRef],
    introducers: Option<&Introducers>,
) -> bool {
    package.is_some_and(|p| {
        unit.matches().iter().any(|m| {
            m.package_version
                .as_ref()
                .is_some_and(|pv| matcher_admits(pv, p))
                && m.state.as_ref().is_none_or(|s| {
                    s.resolved_dependencies
                        .iter()
                        .all(|want| resolved.iter().any(|r| matcher_admits(want, r)))
                        && introduced_as_wanted(s, introducers)
                })
        })
    })
}

/// Does any alternative's `state.resolved_dependencies` hold in `resolved`?
pub fn state_matches(unit: &Unit, resolved: &[PackageRef]) -> bool {
    unit.matches().iter().any(|m| {
        m.state.as_ref().is_none_or(|s| {
            s.resolved_dependencies
                .iter()
                .all(|want| resolved.iter().any(|r| matcher_admits(want, r)))
        })
    })
}

/// Would the unit act in `ctx` for `package` (the package being added or
/// considered; for boots, a direct dependency) given the `resolved`
/// packages of the state? Combines `should_include` with the kind's `match`.
pub fn unit_fires(
    unit: &Unit,
    ctx: &Context,
    package: Option<&PackageRef>,
    resolved: &[PackageRef],
) -> bool {
    should_include(unit, ctx) && match_fires(unit, package, resolved)
}

/// The `match` half of [`unit_fires`], for units already included in a run.
pub fn match_fires(unit: &Unit, package: Option<&PackageRef>, resolved: &[PackageRef]) -> bool {
    use super::schema::UnitKind;
    if !unit.usable() {
        return false;
    }
    match unit.kind {
        UnitKind::Boot | UnitKind::SieveSkipPackage => {
            unit.matches().is_empty()
                || package.is_some_and(|p| {
                    unit.matches()
                        .iter()
                        .any(|m| m.package_name.as_deref() == Some(p.name))
                })
        }
        UnitKind::Pseudonym | UnitKind::Sieve => package.is_some_and(|p| package_matches(unit, p)),
        UnitKind::Step | UnitKind::StepSkipPackage | UnitKind::StepAddPackage => {
            step_matches(unit, package, resolved, None)
        }
        UnitKind::StepGroup => {
            let all: Vec<&PackageRef> = package.into_iter().chain(resolved.iter()).collect();
            unit.matches().iter().any(|m| {
                !m.group.is_empty()
                    && m.group
                        .iter()
                        .all(|g| all.iter().any(|p| matcher_admits(g, p)))
            })
        }
        UnitKind::Stride | UnitKind::Wrap | UnitKind::WrapGhReleaseNotes => {
            unit.matches().is_empty() || state_matches(unit, resolved)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tag_globs() {
        assert!(image_matches(
            "registry.example/s2i-thoth-ubi8-py38:v1.*",
            "registry.example/s2i-thoth-ubi8-py38:v1.0.0"
        ));
        assert!(image_matches(
            "registry.example/s2i-thoth-ubi8-py38",
            "registry.example/s2i-thoth-ubi8-py38:v2"
        ));
        assert!(!image_matches(
            "registry.example/s2i-thoth-ubi8-py38:v1.*",
            "registry.example/s2i-thoth-ubi8-py38:v2.0"
        ));
        assert!(image_matches(
            "localhost:5000/img:1.0",
            "localhost:5000/img:v1.0"
        ));
    }
}

#[cfg(test)]
mod lazy_body_tests {
    use std::sync::Arc;

    use super::*;
    use crate::prescription::schema::{BodySource, ShouldInclude, UnitKind};

    /// A block whose text is whatever the test says.
    struct Text(Option<&'static [u8]>);

    impl BodySource for Text {
        fn text(&self) -> Option<&[u8]> {
            self.0
        }
    }

    /// A wrap whose body is `text[range]` (the whole text by default).
    fn unit(text: Option<&'static [u8]>, range: Option<std::ops::Range<usize>>) -> Unit {
        let range = range.unwrap_or(0..text.map_or(10, <[u8]>::len));
        Unit::encoded(
            "t.Wrap".into(),
            UnitKind::Wrap,
            "t.yaml".into(),
            ShouldInclude::default(),
            Arc::new(Text(text)),
            range,
        )
    }

    #[test]
    fn encoded_bodies_decode_on_use_and_unreadable_ones_never_fire() {
        let good = unit(
            Some(
                br#"{"matches":[{"state":{"resolved_dependencies":[{"name":"flask"}]}}],"run":{"score":0.5}}"#,
            ),
            None,
        );
        assert!(good.usable());
        assert_eq!(good.run().score, Some(0.5));
        let version: Version = "2.0".parse().unwrap();
        let flask = PackageRef {
            name: "flask",
            version: &version,
            index_url: "",
            develop: false,
        };
        assert!(match_fires(&good, None, std::slice::from_ref(&flask)));
        assert!(!match_fires(&good, None, &[]));

        // Not JSON, a block that cannot be decompressed, a range past the end.
        for bad in [
            unit(Some(b"not json"), None),
            unit(None, None),
            unit(Some(br#"{"run":{}}"#), Some(0..30)),
        ] {
            assert!(!bad.usable());
            assert!(bad.matches().is_empty());
            assert!(
                !match_fires(&bad, None, std::slice::from_ref(&flask)),
                "a wrap without match would fire for anything; an unreadable one never does"
            );
        }
    }
}
