//! Hints from the search: what it will ask soon, started in the
//! background now (projects' pages, the metadata of the releases it will
//! try next).

use std::sync::Arc;

use super::{Key, LayeredKb};
use crate::kb::{PrefetchTarget, ProjectRecord, Requires, Wanted};

impl LayeredKb {
    pub(super) fn hint_wanted(&self, target: &Arc<PrefetchTarget>, wanted: &[Wanted]) {
        {
            let mut t = self
                .layers
                .target
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if t.is_none() {
                *t = Some(target.clone());
            }
        }
        if self.layers.options.offline {
            return;
        }
        let new: Vec<Wanted> = {
            let memo = self
                .memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            wanted
                .iter()
                .filter(|w| !memo.contains_key(&w.name))
                .cloned()
                .collect()
        };
        // A project whose page is fresh in the user knowledge base is
        // loaded now; only the others are fetched (and crawled from). One
        // already fetched in this run needs neither.
        let mut fetch = Vec::new();
        for w in new {
            if (0..self.layers.index_keys.len()).any(|i| {
                self.layers
                    .delivered(&Key::Page(i, w.name.clone()))
                    .is_some()
            }) {
                continue;
            }
            match self.stored_project(&w.name) {
                Ok(Some(done)) => {
                    self.memo
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(w.name.clone())
                        .or_insert(done);
                }
                _ => fetch.push(w),
            }
        }
        let new = fetch;
        if new.is_empty() {
            return;
        }
        if let Ok(remote) = self.remote() {
            remote.crawl(target.clone(), new);
        }
    }

    pub(super) fn hint_projects(&self, names: &[String]) {
        if self.layers.options.offline {
            return;
        }
        let Ok(remote) = self.remote() else {
            return;
        };
        for name in names {
            let known = self
                .memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(name);
            if known {
                continue;
            }
            let first = self
                .layers
                .indexes
                .indexes
                .iter()
                .position(|ix| self.layers.indexes.for_project(name).contains(&ix));
            if let Ok(Some(done)) = self.stored_project(name) {
                self.memo
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(name.clone())
                    .or_insert(done);
                continue;
            }
            if let Some(i) = first {
                remote.ask(
                    Key::Page(i, name.clone()),
                    crate::index::http::Priority::HINT,
                );
            }
        }
    }

    pub(super) fn hint_metadata(&self, record: &Arc<ProjectRecord>, releases: &[usize]) {
        if self.layers.options.offline {
            return;
        }
        let Some(i) = self.layers.index_of(record) else {
            return;
        };
        let Ok(remote) = self.remote() else {
            return;
        };
        for &r in releases {
            let release = &record.releases[r];
            if !matches!(release.dependencies, Requires::NotFetched) {
                continue;
            }
            let key = Key::Meta(i, record.name.clone(), release.version.clone());
            if self.layers.delivered(&key).is_some() {
                continue;
            }
            remote.ask_metadata(
                key,
                &release.distributions,
                crate::index::http::Priority::HINT,
            );
        }
    }
}
