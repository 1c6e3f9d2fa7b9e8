//! thoth-rs: an offline, quality-aware Python dependency resolver.
//!
//! The crate follows the data flow of one `advise` run:
//!
//! 1. [`input`] — project files (Pipfile, requirements files, pyproject.toml,
//!    Pipfile.lock), `.thoth.yaml`, constraints and labels, parsed and
//!    validated with precise error locations;
//! 2. [`environment`] — the runtime environment the stack is resolved for,
//!    detected from the machine (`thoth-rs config`) or read from `.thoth.yaml`,
//!    completed by [`image`]'s analysis of a base container image, and parsed
//!    once into a [`environment::Target`];
//! 3. [`prescription`] — Thoth v1 prescriptions compiled into units;
//! 4. [`kb`] — the knowledge base (SQLite snapshot behind a trait) over
//!    [`record`]'s data (project records, wheel tags, core metadata), which
//!    [`index`] reads from package indexes; [`sync`] builds snapshots;
//! 5. [`resolve`] — the complete, unit-driven search, run as a series of
//!    episodes that [`predict`]'s predictors steer towards better stacks;
//! 6. [`graph`] — the resolved stack (or an existing lock read back) as a
//!    graph of requirements, which the report, `tree` and `why` walk;
//! 7. [`lock`] — Pipfile.lock, requirements.txt and pylock.toml writers;
//!    [`provenance`] checks an existing lock against the snapshot.
//!
//! [`advise`] ties them together for one run from [`settings`] (and
//! [`monkey`] for Dependency Monkey); [`cli`] is the command-line front end
//! and [`write`] the atomic file writer.
//!
//! [`usage`] reads which libraries and symbols the project's own code
//! uses (units select on it).
//!
//! [`time`] is the one timestamp type, parsed at the edges.
//!
//! [`python`] wraps the PEP 440/508 crates so the rest of the code never
//! depends on them directly; [`policy`] holds the small policy enums.
//!
//! ```
//! use std::path::Path;
//! use thoth_rs::environment::TargetEnvironment;
//! use thoth_rs::input::pipfile::Pipfile;
//!
//! let pipfile = Pipfile::parse(
//!     Path::new("Pipfile"),
//!     "[packages]\nuvloop = {version = \">=0.17\", markers = \"sys_platform == 'linux'\"}\n\n[requires]\npython_version = \"3.11\"\n",
//! )
//! .unwrap();
//! let uvloop = &pipfile.packages[0].requirement;
//! assert_eq!(uvloop.name.as_ref(), "uvloop");
//!
//! // The marker holds on the default environment (CPython 3.11 on linux-x86_64).
//! let env = TargetEnvironment::from_runtime(None, pipfile.requires.python_version.as_deref());
//! let markers = env.marker_environment().unwrap();
//! assert!(uvloop.marker.as_ref().unwrap().tree.evaluate(&markers, &[]));
//! ```

pub mod advise;
pub mod cli;
pub mod environment;
pub mod graph;
pub mod image;
pub mod index;
pub mod input;
pub mod kb;
pub mod lock;
pub mod monkey;
pub mod policy;
pub mod predict;
pub mod prescription;
pub mod provenance;
pub mod python;
pub mod record;
pub mod resolve;
pub mod settings;
pub mod sync;
pub mod time;
pub mod usage;
pub mod write;
