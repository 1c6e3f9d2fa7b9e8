//! What a run's knowledge base did: where each project came from, how much
//! was fetched, and how old the data is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{LayeredKb, Origin};
use crate::kb::KnowledgeBase;

/// What a run's knowledge base did, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    /// `online` or `offline`.
    pub mode: &'static str,
    /// Indexes in order (without credentials), and where they came from.
    pub indexes: Vec<String>,
    /// Where the index list came from.
    pub indexes_from: String,
    /// The user knowledge base file.
    pub user_kb: String,
    /// The base snapshot file, its cutoff and index.
    pub base_snapshot: Option<serde_json::Value>,
    /// Project pages: fetched, revalidated (304), from the user knowledge
    /// base, from the base snapshot, not found.
    pub pages: BTreeMap<&'static str, u64>,
    /// Release metadata by where it came from.
    pub metadata: BTreeMap<&'static str, u64>,
    /// Age in seconds of the oldest project data the run used (`None` when
    /// all of it was fetched now).
    pub oldest_data_seconds: Option<i64>,
    /// Where each project the run looked at came from.
    pub projects: BTreeMap<String, Origin>,
    /// Network use.
    pub network: BTreeMap<&'static str, f64>,
    /// Projects no layer could supply (offline).
    pub missing_projects: Vec<String>,
    /// Releases whose metadata no layer could supply (offline).
    pub missing_metadata: Vec<String>,
}

impl LayeredKb {
    /// Requests sent and bytes received so far.
    pub fn network_counts(&self) -> (u64, u64) {
        match self.remote.get() {
            Some(Ok(remote)) => {
                let s = &remote.client().stats;
                (
                    s.requests.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                )
            }
            _ => (0, 0),
        }
    }

    /// What this run's knowledge base did.
    pub fn report(&self) -> LiveReport {
        let c = &self.layers.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let projects: BTreeMap<String, Origin> = memo
            .iter()
            .map(|(name, (_, origin))| (name.clone(), origin.clone()))
            .collect();
        drop(memo);
        let from_base = projects
            .values()
            .filter(|o| matches!(o, Origin::Snapshot { .. }))
            .count() as u64;
        let from_store = projects
            .values()
            .filter(|o| matches!(o, Origin::UserKb { .. }))
            .count() as u64;
        let oldest = projects
            .values()
            .filter_map(|o| match o {
                Origin::UserKb { age_seconds, .. } => Some(*age_seconds),
                _ => None,
            })
            .max();
        let mut network = BTreeMap::new();
        if let Some(Ok(remote)) = self.remote.get() {
            let s = &remote.client().stats;
            network.insert("requests", n(&s.requests) as f64);
            network.insert("bytes", n(&s.bytes) as f64);
            network.insert("retries", n(&s.retries) as f64);
            network.insert("not_modified", n(&s.not_modified) as f64);
        } else {
            network.insert("requests", 0.0);
            network.insert("bytes", 0.0);
        }
        network.insert("seconds_waiting", self.waited.seconds());
        LiveReport {
            mode: if self.layers.options.offline {
                "offline"
            } else {
                "online"
            },
            indexes: self
                .layers
                .index_keys
                .iter()
                .map(|k| k.to_string())
                .collect(),
            indexes_from: self.layers.indexes.origin.clone(),
            user_kb: self.store.path().display().to_string(),
            base_snapshot: self.layers.base.as_ref().map(|b| {
                serde_json::json!({
                    "path": b.path().display().to_string(),
                    "created_at": b.meta().created_at,
                    "cutoff": b.meta().cutoff,
                    "index_url": b.meta().index_url,
                    "role": if self.layers.base_primary { "primary" } else { "fallback" },
                })
            }),
            pages: BTreeMap::from([
                ("fetched", n(&c.pages_fetched)),
                ("revalidated", n(&c.pages_revalidated)),
                ("from_user_kb", from_store),
                ("from_base_snapshot", from_base),
                ("not_found", n(&c.pages_not_found)),
            ]),
            metadata: BTreeMap::from([
                ("from_base_snapshot", n(&c.meta_base)),
                ("from_user_kb", n(&c.meta_stored)),
                ("fetched_pep658", n(&c.meta_pep658)),
                ("fetched_wheel_range", n(&c.meta_range)),
                ("fetched_sdist", n(&c.meta_sdist)),
                ("unavailable", n(&c.meta_unavailable)),
            ]),
            oldest_data_seconds: oldest,
            projects,
            network,
            missing_projects: self.missing_projects(),
            missing_metadata: self.missing_metadata(),
        }
    }
}
