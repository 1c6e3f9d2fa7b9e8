//! An in-memory knowledge base for tests, benchmarks and documentation; it
//! answers exactly like the SQLite one and can be written out as a snapshot.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::writer::SnapshotWriter;
use super::{Advisory, KbError, KnowledgeBase, Lookup, ProjectRecord, SnapshotMeta};

/// Projects and advisories held in maps.
#[derive(Debug, Clone, Default)]
pub struct MemoryKb {
    /// Snapshot facts.
    pub meta: SnapshotMeta,
    /// Stored projects by normalised name.
    pub projects: BTreeMap<String, Arc<ProjectRecord>>,
    /// Known-unavailable projects and why.
    pub unavailable: BTreeMap<String, String>,
    /// Advisories by id.
    pub advisories: BTreeMap<String, Advisory>,
}

impl MemoryKb {
    /// Add (or replace) a project; releases are kept newest first.
    pub fn insert(&mut self, mut record: ProjectRecord) {
        record.releases.sort_by(|a, b| b.version.cmp(&a.version));
        self.projects.insert(record.name.clone(), Arc::new(record));
    }

    /// Record a project as unavailable.
    pub fn mark_unavailable(&mut self, name: &str, reason: &str) {
        self.unavailable
            .insert(name.to_string(), reason.to_string());
    }

    /// Write everything as a SQLite snapshot (atomically).
    pub fn write_sqlite(&self, path: &Path) -> Result<(), KbError> {
        let mut writer = SnapshotWriter::create(path)?;
        writer.set_meta(&self.meta)?;
        for record in self.projects.values() {
            writer.add_project(record)?;
        }
        for (name, reason) in &self.unavailable {
            writer.add_unavailable(name, reason)?;
        }
        super::osv::store_advisories(writer.connection(), self.advisories.values(), &[]).map_err(
            |source| KbError::Sqlite {
                path: path.display().to_string(),
                source,
            },
        )?;
        writer.finish()?;
        Ok(())
    }
}

impl KnowledgeBase for MemoryKb {
    fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    fn project(&self, name: &str) -> Result<Lookup, KbError> {
        Ok(
            match (self.projects.get(name), self.unavailable.get(name)) {
                (Some(record), _) => Lookup::Found(record.clone()),
                (None, Some(reason)) => Lookup::Unavailable(reason.clone()),
                (None, None) => Lookup::Missing,
            },
        )
    }

    fn advisory(&self, id: &str) -> Result<Option<Advisory>, KbError> {
        Ok(self.advisories.get(id).cloned())
    }
}
