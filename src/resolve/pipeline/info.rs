//! What units said, and about what: each stack_info entry keeps the
//! releases or packages it was raised about, so a report shows only the
//! entries that concern the stack it reports.

use std::collections::BTreeMap;

use super::{Pipeline, Refusal};
use crate::prescription::schema::{Message, Unit};
use crate::python::Version;

/// What a stack_info entry was raised about, so a report keeps only the
/// entries that concern the stack it reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct InfoOrigin {
    /// Releases the unit fired on: all must be in the stack.
    pub(super) pins: Vec<(String, Version)>,
    /// Packages the unit acted on whatever their version (sieves, skips,
    /// pseudonyms): each must be in the stack or left out of it.
    pub(super) names: Vec<String>,
    /// A release the unit refused: it concerns a stack holding an older
    /// release of the package (the refusal is why it is not newer).
    pub(super) refused: Option<(String, Version)>,
}

impl InfoOrigin {
    pub(super) fn about_name(name: &str) -> Self {
        Self {
            names: vec![name.to_string()],
            ..Self::default()
        }
    }

    fn concerns(&self, stack: &BTreeMap<&str, Option<&Version>>) -> bool {
        self.pins
            .iter()
            .all(|(n, v)| stack.get(n.as_str()) == Some(&Some(v)))
            && self.names.iter().all(|n| stack.contains_key(n.as_str()))
            && self.refused.as_ref().is_none_or(|(n, refused)| {
                stack
                    .get(n.as_str())
                    .is_some_and(|v| v.is_some_and(|v| v < refused))
            })
    }
}

impl Pipeline<'_> {
    /// The stack_info entries that concern a stack: those raised about
    /// its own releases, about packages it holds or leaves out (`skipped`),
    /// or about no package at all. Entries raised only while trying
    /// releases the stack does not hold are dropped.
    pub fn stack_info_for<'a>(
        &self,
        pinned: impl IntoIterator<Item = (&'a str, &'a Version)>,
        skipped: impl IntoIterator<Item = &'a str>,
    ) -> Vec<Message> {
        let mut stack: BTreeMap<&str, Option<&Version>> = BTreeMap::new();
        for (n, v) in pinned {
            stack.insert(n, Some(v));
        }
        for n in skipped {
            stack.entry(n).or_insert(None);
        }
        let mut out: Vec<Message> = Vec::new();
        for (m, origin) in self.stack_info.iter().zip(&self.info_origin) {
            if origin.concerns(&stack) && !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Record that `unit` acted on what `origin` names: its stack_info
    /// (once per run and origin) and log.
    pub(super) fn acted(&mut self, unit: &Unit, package: Option<&str>, origin: InfoOrigin) {
        let entry = self.ran.entry(unit.name.clone()).or_insert((unit.kind, 0));
        entry.1 += 1;
        for m in &unit.run().stack_info {
            let mut m = m.clone();
            if m.package_name.is_none() {
                m.package_name = package.map(str::to_string);
            }
            let key = format!("{}|{:?}|{}|{:?}", unit.name, m.kind, m.message, origin);
            if self.seen_info.insert(key) {
                self.stack_info.push(m);
                self.info_origin.push(origin.clone());
            }
        }
        if let Some(log) = &unit.run().log {
            tracing::info!(unit = %unit.name, "{}", log.message);
        }
        if self.eager_stop.is_none()
            && let Some(msg) = &unit.run().eager_stop_pipeline
        {
            self.eager_stop = Some(Refusal {
                unit: unit.name.clone(),
                message: msg.clone(),
                culprits: Vec::new(),
            });
        }
    }
}
