//! Why no stack exists, as a derivation a reader can follow: from the
//! package whose failure ended the search, through every release it could
//! not take and why, down to the requirements that clash.
//!
//! The search keeps one [`Exhausted`] record per package that ran out of
//! candidates; a release that failed because a package it brought in ran
//! out points at that package's record. [`Derivation::from_record`] turns
//! that tree into plain data (releases with the same reason merged) that is
//! both the `--json` explanation and, through `Display`, the text.

use std::collections::BTreeSet;

use super::conflict::{Cause, Exclusion, Exhausted};

/// How deep the text follows failures below failures.
const TEXT_DEPTH: usize = 6;
/// How many levels the data holds.
const DATA_DEPTH: usize = 16;
/// Versions listed before "and N more".
const SHOWN: usize = 6;

/// One package that ran out of candidates, and why each of its releases
/// could not be taken.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Derivation {
    /// The package.
    pub package: String,
    /// The requirements on it, each with its chain back to the project.
    pub required_by: Vec<String>,
    /// Its releases, grouped by why they could not be taken, newest
    /// group first.
    pub rejected: Vec<RejectedGroup>,
}

/// Releases of one package that failed for one reason.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RejectedGroup {
    /// The versions, newest first.
    pub versions: Vec<String>,
    /// Why, in words.
    pub reason: String,
    /// When a package they bring in ran out: what they require of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// That package's failure, when one caused this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub below: Option<Box<Derivation>>,
    /// The other requirements on that package that ruled releases out
    /// (with their chains).
    #[serde(skip)]
    pub clashes_with: Vec<String>,
}

/// What groups releases: the same reason in words, or the same failure
/// below (the package, what these releases require of it, and the other
/// requirements on it that ruled releases out).
#[derive(PartialEq, Eq)]
enum Key {
    Text(String),
    Below(String, Option<String>, BTreeSet<String>),
}

/// The group for `key`, added (with the failure below that `below` gives)
/// when it is new.
fn group_of(
    groups: &mut Vec<(Key, RejectedGroup)>,
    key: Key,
    below: impl FnOnce() -> Option<Box<Derivation>>,
) -> usize {
    if let Some(g) = groups.iter().position(|(k, _)| *k == key) {
        return g;
    }
    let step = match &key {
        Key::Text(text) => RejectedGroup {
            versions: Vec::new(),
            reason: text.clone(),
            requires: None,
            below: None,
            clashes_with: Vec::new(),
        },
        Key::Below(package, wanted, others) => RejectedGroup {
            versions: Vec::new(),
            reason: match wanted {
                Some(req) => format!("requires {req}"),
                None => format!("with it, {package} could not be decided"),
            },
            requires: wanted.clone(),
            below: below(),
            clashes_with: others.iter().cloned().collect(),
        },
    };
    groups.push((key, step));
    groups.len() - 1
}

impl Derivation {
    /// The derivation rooted at `record`, failures below followed.
    pub fn from_record(record: &Exhausted) -> Self {
        Self::build(record, DATA_DEPTH - 1)
    }

    /// `record` alone: its releases grouped, failures below only named.
    pub fn flat(record: &Exhausted) -> Self {
        Self::build(record, 0)
    }

    /// Group `record`'s releases by reason (one step per reason, newest
    /// group first), following failures below for `depth` more levels.
    fn build(record: &Exhausted, depth: usize) -> Self {
        let mut groups: Vec<(Key, RejectedGroup)> = Vec::new();
        // (release, group) for every release with a reason.
        let mut members: Vec<(usize, usize)> = Vec::new();
        for (exclusion, releases) in &record.excluded {
            let g = group_of(&mut groups, Key::Text(exclusion.to_string()), || None);
            members.extend(releases.iter().map(|&r| (r, g)));
        }
        for (r, cause) in &record.tried {
            let g = match cause {
                Cause::Below(child) => {
                    let wanted = requirement_from(child, &record.package);
                    // The other requirements that ruled releases out.
                    let others: BTreeSet<String> = child
                        .demands
                        .iter()
                        .filter(|d| d.from.as_deref() != Some(record.package.as_str()))
                        .filter(|d| {
                            child.excluded.iter().any(|(e, _)| {
                                matches!(e, Exclusion::Requirement(req, by)
                                    if *req == d.requirement && *by == d.requirer)
                            })
                        })
                        .map(|d| d.chain.clone())
                        .collect();
                    let key = Key::Below(child.package.clone(), wanted, others);
                    group_of(&mut groups, key, || {
                        (depth > 0).then(|| Box::new(Self::build(child, depth - 1)))
                    })
                }
                other => group_of(&mut groups, Key::Text(other.to_string()), || None),
            };
            members.push((*r, g));
        }
        members.sort_unstable();
        let mut order = Vec::with_capacity(groups.len());
        for (r, g) in members {
            let step = &mut groups[g].1;
            if step.versions.is_empty() {
                order.push(g);
            }
            step.versions.push(record.view.version(r).to_string());
        }
        let mut steps: Vec<Option<RejectedGroup>> =
            groups.into_iter().map(|(_, s)| Some(s)).collect();
        Derivation {
            package: record.package.clone(),
            required_by: record.demands.iter().map(|d| d.chain.clone()).collect(),
            rejected: order.into_iter().filter_map(|g| steps[g].take()).collect(),
        }
    }

    fn write(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        indent: usize,
        depth: usize,
    ) -> std::fmt::Result {
        let pad = " ".repeat(indent);
        writeln!(
            f,
            "{pad}no version of {} satisfies every requirement on it:",
            self.package
        )?;
        for r in &self.required_by {
            writeln!(f, "{pad}  required: {r}")?;
        }
        if self.rejected.is_empty() {
            writeln!(f, "{pad}  the snapshot has no release of {}", self.package)?;
        }
        let mut shown_below: Vec<&str> = Vec::new();
        for step in &self.rejected {
            let versions = list(&step.versions);
            let Some(below) = &step.below else {
                writeln!(f, "{pad}  {} {versions}: {}", self.package, step.reason)?;
                continue;
            };
            match &step.requires {
                Some(req) if step.versions.len() > 1 => writeln!(
                    f,
                    "{pad}  {} {versions}: each requires {req}, and",
                    self.package
                )?,
                Some(req) => {
                    writeln!(f, "{pad}  {} {versions}: requires {req}, and", self.package)?
                }
                None => writeln!(f, "{pad}  {} {versions}: {}:", self.package, step.reason)?,
            }
            if shown_below.contains(&below.package.as_str()) {
                let with = if step.clashes_with.is_empty() {
                    String::new()
                } else {
                    format!(" together with {}", step.clashes_with.join(" and "))
                };
                writeln!(
                    f,
                    "{pad}    no version of {} satisfies that{with}, as above",
                    below.package
                )?;
            } else if depth + 1 >= TEXT_DEPTH {
                writeln!(
                    f,
                    "{pad}    no version of {} could be used (deeper failures are in the --json explanation)",
                    below.package
                )?;
            } else {
                shown_below.push(&below.package);
                below.write(f, indent + 4, depth + 1)?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Derivation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f, 0, 0)
    }
}

/// What `record`'s package was required as by the package `parent`.
fn requirement_from(record: &Exhausted, parent: &str) -> Option<String> {
    record
        .demands
        .iter()
        .find(|d| d.from.as_deref() == Some(parent))
        .map(|d| d.requirement.clone())
}

/// "3.1.3, 3.1.2 and 3.1.1", or the first few "and N more".
fn list(versions: &[String]) -> String {
    match versions {
        [] => String::new(),
        [one] => one.clone(),
        _ if versions.len() > SHOWN => format!(
            "{} and {} more",
            versions[..SHOWN].join(", "),
            versions.len() - SHOWN
        ),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
