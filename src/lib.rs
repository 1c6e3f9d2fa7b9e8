//! thoth-rs: an offline, quality-aware Python dependency resolver.
//!
//! The crate follows the data flow of one `advise` run:
//!
//! 1. [`input`] — project files (Pipfile, requirements files, pyproject.toml,
//!    Pipfile.lock), `.thoth.yaml`, constraints and labels, parsed and
//!    validated with precise error locations;
//! 2. [`environment`] — the runtime environment the stack is resolved for,
//!    detected from the machine (`thoth-rs config`) or read from `.thoth.yaml`;
//! 3. prescriptions, the knowledge base, the resolver and the writers follow
//!    in later stages.
//!
//! [`python`] wraps the PEP 440/508 crates so the rest of the code never
//! depends on them directly; [`policy`] holds the small policy enums.

pub mod cli;
pub mod environment;
pub mod input;
pub mod policy;
pub mod python;
pub mod settings;
pub mod write;
