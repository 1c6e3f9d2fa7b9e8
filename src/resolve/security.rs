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

    /// The penalty step for `name` `version` with `advisories`: its score
    /// and one warning per advisory not allowed.
    pub fn step(
        &self,
        name: &str,
        version: &str,
        advisories: &[std::rc::Rc<Advisory>],
    ) -> (f64, Vec<Message>) {
        let Some(per) = self.penalty else {
            return (0.0, Vec::new());
        };
        let counted: Vec<&Advisory> = advisories
            .iter()
            .map(AsRef::as_ref)
            .filter(|a| !self.is_allowed(a))
            .collect();
        let score = (per * counted.len() as f64).max(-1.0);
        let messages = counted
            .into_iter()
            .map(|a| {
                let mut extra = BTreeMap::new();
                extra.insert("advisory".to_string(), a.id.clone());
                Message {
                    kind: MessageType::Warning,
                    message: format!(
                        "{name} {version} has a known advisory {}{}{}",
                        a.id,
                        if a.aliases.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", a.aliases.join(", "))
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
