//! A base image's Python in a run: which of its packages the stack must
//! live with (by [`ImageMode`]), their requirements as installed, and what
//! the report says about them.

use std::collections::BTreeMap;

use crate::image::{ImageMode, PythonPackage};
use crate::kb::{Dependency, KnowledgeBase, Lookup, MetadataAnswer};
use crate::prescription::schema::{Message, MessageType};
use crate::python::{Version, parse_specifiers, parse_version};
use crate::resolve::universe::InstalledRelease;
use crate::resolve::{Resolution, SearchRules};
use crate::settings::AdviseSettings;

fn info(message: String, package: Option<&str>) -> Message {
    Message {
        kind: MessageType::Info,
        message,
        link: Vec::new(),
        package_name: package.map(str::to_string),
        extra: BTreeMap::new(),
    }
}

fn image_name(s: &AdviseSettings) -> String {
    s.image
        .as_ref()
        .and_then(|a| a.reference.as_ref())
        .map_or_else(
            || "the base image".to_string(),
            |r| format!("base image {r}"),
        )
}

/// Where an installed package comes from, for messages: its site directory
/// and the distribution package that owns it.
fn origin(p: &PythonPackage) -> String {
    match &p.distro_package {
        Some(d) => format!("{}, from the distribution package {d}", p.location),
        None => p.location.clone(),
    }
}

/// What a run takes from the base image: the facts prescriptions select
/// on, and the releases already where the stack goes.
pub fn run_inputs(
    s: &AdviseSettings,
) -> (
    Option<crate::prescription::eval::ImageFacts>,
    Vec<InstalledRelease>,
) {
    let facts = s.image.as_ref().map(|a| a.facts(&s.image_installed()));
    (facts, installed_releases(s))
}

/// The installed releases whose own requirements hold (name, version,
/// requirements as installed): those already where the stack goes.
fn installed_releases(s: &AdviseSettings) -> Vec<InstalledRelease> {
    s.image_installed()
        .into_iter()
        .filter_map(|p| {
            let version = parse_version(&p.version).ok()?;
            let deps = p
                .requires
                .iter()
                .filter_map(|r| crate::kb::metadata::dependency_from_requirement(r))
                .collect();
            Some((p.name.clone(), version, deps))
        })
        .collect()
}

/// Into the image's environment, its packages are installed and stay:
/// each one the knowledge base knows is pinned to the installed version
/// (a constraint, so it binds only when the stack needs the package, and a
/// requirement that contradicts it is reported as a conflict with the
/// image).
pub fn pin_image_packages(s: &AdviseSettings, kb: &dyn KnowledgeBase, rules: &mut SearchRules) {
    if !matches!(s.image_target(), Some((_, ImageMode::IntoImage))) {
        return;
    }
    let image = image_name(s);
    let packages = s.image_installed();
    // Ask for them all at once (a knowledge base that fetches starts them
    // together) before looking at each.
    kb.prefetch_projects(&packages.iter().map(|p| p.name.clone()).collect::<Vec<_>>());
    for p in packages {
        let Ok(v) = parse_version(&p.version) else {
            tracing::warn!(
                "{image}: {} {} has an invalid version; not pinned",
                p.name,
                p.version
            );
            continue;
        };
        match kb.project(&p.name) {
            Ok(Lookup::Found(record)) => {
                if !record.releases.iter().any(|r| r.version == v) {
                    tracing::warn!(
                        "{image} has {} {}, which the knowledge base does not hold; \
                         if the stack needs {}, another version replaces it",
                        p.name,
                        p.version,
                        p.name
                    );
                    continue;
                }
            }
            _ => continue,
        }
        if let Ok(spec) = parse_specifiers(&format!("=={}", p.version)) {
            rules.constraints.entry(p.name.clone()).or_default().push((
                spec,
                format!(
                    "{}=={} (installed in {image}, {})",
                    p.name,
                    p.version,
                    origin(p)
                ),
            ));
        }
    }
}

/// Unconditional requirements (no marker, no extra) of `deps` on
/// `installed` packages whose installed version they do not admit:
/// (requirement text, installed package).
fn unmet<'a>(
    deps: &[Dependency],
    installed: &[&'a PythonPackage],
) -> Vec<(String, &'a PythonPackage)> {
    deps.iter()
        .filter(|d| d.marker.is_none() && d.extra.is_none())
        .filter_map(|d| {
            let other = installed.iter().find(|q| q.name == d.name)?;
            let spec = parse_specifiers(&d.specifier).ok()?;
            let version = parse_version(&other.version).ok()?;
            (!spec.contains(&version)).then(|| {
                let text = if d.specifier.is_empty() {
                    d.name.clone()
                } else {
                    format!("{}{}", d.name, d.specifier)
                };
                (text, *other)
            })
        })
        .collect()
}

/// Requirements the index records for `name` `version`, when known.
fn published_requirements(
    kb: &dyn KnowledgeBase,
    name: &str,
    version: &Version,
) -> Option<Vec<Dependency>> {
    let Ok(Lookup::Found(record)) = kb.project(name) else {
        return None;
    };
    let index = record.releases.iter().position(|r| &r.version == version)?;
    match kb.metadata(&record, index).ok()? {
        MetadataAnswer::Known(meta) => Some(meta.dependencies.as_ref().clone()),
        MetadataAnswer::Unavailable(_) => None,
    }
}

/// What the report says about the base image: the mode and interpreter,
/// the image's packages the stack keeps or replaces, and where the image's
/// own packages disagree (information, never a failure).
pub fn note_image_packages(
    s: &AdviseSettings,
    kb: &dyn KnowledgeBase,
    resolution: &mut Resolution,
) {
    let Some((interpreter, mode)) = s.image_target() else {
        return;
    };
    let how = if s.target.environment.base_image_mode.is_some() {
        "chosen"
    } else {
        "the default for this interpreter; set base_image_mode or --base-image-mode to change it"
    };
    resolution.stack_info.push(info(
        format!(
            "{}: Python {} at {} ({}); installing {} — mode {} ({how})",
            image_name(s),
            interpreter.version,
            interpreter.path,
            interpreter.describe(),
            mode.describe(),
            mode.name()
        ),
        None,
    ));
    let installed = s.image_installed();
    if installed.is_empty() {
        return;
    }
    // The image's packages as installed, checked against each other.
    for p in &installed {
        let deps: Vec<Dependency> = p
            .requires
            .iter()
            .filter_map(|r| crate::kb::metadata::dependency_from_requirement(r))
            .collect();
        for (requirement, other) in unmet(&deps, &installed) {
            resolution.stack_info.push(info(
                format!(
                    "the image's own packages disagree: {} {} ({}) requires {requirement}, and the image has {} {}; this is how the image was built, not a reason against any stack",
                    p.name,
                    p.version,
                    origin(p),
                    other.name,
                    other.version
                ),
                Some(&p.name),
            ));
        }
    }
    let by_name: BTreeMap<&str, &PythonPackage> =
        installed.iter().map(|p| (p.name.as_str(), *p)).collect();
    for r in &resolution.packages {
        let Some(p) = by_name.get(r.name.as_str()) else {
            continue;
        };
        let same = parse_version(&p.version).is_ok_and(|v| v == r.version);
        let message = if same {
            let mut m = format!(
                "{} {} comes from the base image ({}); the stack keeps it",
                r.name,
                r.version,
                origin(p)
            );
            // Distributions patch requirements: say when the installed
            // copy's differ from the published release's in a way that
            // matters here.
            if let Some(published) = published_requirements(kb, &r.name, &r.version) {
                let clashes = unmet(&published, &installed);
                if !clashes.is_empty() {
                    let list: Vec<String> = clashes
                        .iter()
                        .map(|(req, q)| format!("{req} (the image has {} {})", q.name, q.version))
                        .collect();
                    m.push_str(&format!(
                        "; the published {} {} requires {}, but the installed copy does not, and its own requirements are the ones used",
                        r.name,
                        r.version,
                        list.join(", ")
                    ));
                }
            }
            m
        } else {
            format!(
                "{} {} replaces the base image's {} {} ({}) in the virtual environment",
                r.name,
                r.version,
                p.name,
                p.version,
                origin(p)
            )
        };
        resolution.justification.push(info(message, Some(&r.name)));
    }
}
