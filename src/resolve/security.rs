//! Known advisories as the search sees them. Every recommendation type but
//! `security` runs a penalty step (a score per advisory, with a warning for
//! each); `security` instead removes affected releases before the search,
//! except advisories the user allowed with the `allow-cve` label.

use std::collections::{BTreeMap, BTreeSet};

use crate::kb::Advisory;
use crate::policy::RecommendationType;
use crate::prescription::schema::{Message, MessageType};

/// Score per advisory for stable, testing and performance.
pub const PENALTY_PER_ADVISORY: f64 = -0.2;

/// How a run treats releases with known advisories.
#[derive(Debug, Clone, Default)]
pub struct Security {
    /// Score added per advisory (floored at −1); `None`: no penalty step.
    pub penalty: Option<f64>,
    /// Remove affected releases from the candidates.
    pub sieve: bool,
    /// Advisory ids or aliases the user accepts (`allow-cve` label).
    pub allowed: BTreeSet<String>,
}

impl Security {
    /// The treatment for `kind`, with `labels` (`allow-cve=ID1,ID2`).
    pub fn for_run(kind: RecommendationType, labels: &BTreeMap<String, String>) -> Self {
        let allowed = labels
            .get("allow-cve")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_uppercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let (penalty, sieve) = match kind {
            RecommendationType::Latest => (Some(0.0), false),
            RecommendationType::Security => (None, true),
            RecommendationType::Stable
            | RecommendationType::Testing
            | RecommendationType::Performance => (Some(PENALTY_PER_ADVISORY), false),
        };
        Self {
            penalty,
            sieve,
            allowed,
        }
    }

    /// Is any advisory looked at?
    pub fn active(&self) -> bool {
        self.penalty.is_some() || self.sieve
    }

    /// Did the user allow `advisory`?
    pub fn is_allowed(&self, advisory: &Advisory) -> bool {
        std::iter::once(&advisory.id)
            .chain(&advisory.aliases)
            .any(|id| self.allowed.contains(&id.to_ascii_uppercase()))
    }

    /// The sieve's verdict on a release with `advisories`: the ids that
    /// remove it, or `None` when it stays.
    pub fn sieve_verdict(&self, advisories: &[std::rc::Rc<Advisory>]) -> Option<String> {
        if !self.sieve {
            return None;
        }
        let ids: Vec<&str> = advisories
            .iter()
            .filter(|a| !self.is_allowed(a))
            .map(|a| a.id.as_str())
            .collect();
        (!ids.is_empty()).then(|| ids.join(", "))
    }

    /// Does the step have anything to say (a penalty, or advisories the
    /// user accepted, which are always reported)?
    pub fn steps(&self) -> bool {
        self.penalty.is_some() || !self.allowed.is_empty()
    }

    /// The score the advisory step gives a release with `advisories`: the
    /// penalty per advisory not accepted, floored at −1 (0 without a
    /// penalty).
    pub fn penalty_for(&self, advisories: &[std::rc::Rc<Advisory>]) -> f64 {
        self.penalty.map_or(0.0, |per| {
            let counted = advisories.iter().filter(|a| !self.is_allowed(a)).count();
            (per * counted as f64).max(-1.0)
        })
    }

    /// The advisory step for `name` `version` with `advisories`: its score
    /// (the penalty per advisory not accepted) and one warning per
    /// advisory, the accepted ones included: accepting an advisory with
    /// `allow-cve` keeps the release, never the silence.
    pub fn step(
        &self,
        name: &str,
        version: &str,
        advisories: &[std::rc::Rc<Advisory>],
    ) -> (f64, Vec<Message>) {
        let (accepted, counted): (Vec<&Advisory>, Vec<&Advisory>) = advisories
            .iter()
            .map(AsRef::as_ref)
            .partition(|a| self.is_allowed(a));
        let score = self.penalty_for(advisories);
        let counted = if self.penalty.is_some() {
            counted
        } else {
            Vec::new()
        };
        let messages = counted
            .into_iter()
            .map(|a| (a, false))
            .chain(accepted.into_iter().map(|a| (a, true)))
            .map(|(a, accepted)| {
                let mut extra = BTreeMap::new();
                extra.insert("advisory".to_string(), a.id.clone());
                if accepted {
                    extra.insert("accepted".to_string(), "allow-cve".to_string());
                }
                Message {
                    kind: MessageType::Warning,
                    message: format!(
                        "{name} {version} has a known advisory {}{}{}{}",
                        a.id,
                        if a.aliases.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", a.aliases.join(", "))
                        },
                        if accepted {
                            ", accepted with the label allow-cve"
                        } else {
                            ""
                        },
                        a.summary
                            .as_deref()
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default()
                    ),
                    link: a.link.iter().cloned().collect(),
                    package_name: Some(name.to_string()),
                    extra,
                }
            })
            .collect();
        (score, messages)
    }
}
