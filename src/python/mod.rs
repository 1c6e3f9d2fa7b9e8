//! A thin facade over `pep440_rs` and `pep508_rs`.
//!
//! Everything else in thoth-rs goes through this module, so swapping the
//! underlying crates later touches one place. It also closes two gaps of
//! pep508_rs 0.9.2 that matter for user input:
//!
//! * an invalid name such as `1. >= 1` makes the parser panic, so names are
//!   validated before the parser ever sees them;
//! * an unparsable marker clause (`python_version >= "three"`) is silently
//!   replaced by "always true" and only reported through a `Reporter`, so
//!   every parse here uses a reporter and turns such reports into errors.

use std::fmt;
use std::str::FromStr;

pub use pep440_rs::{Operator, Version, VersionSpecifier, VersionSpecifiers};
pub use pep508_rs::{ExtraName, MarkerEnvironment, MarkerTree, PackageName};
use pep508_rs::{MarkerWarningKind, VerbatimUrl, VersionOrUrl};

/// Why a requirement, marker or specifier string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Human readable explanation, including what was expected.
    pub message: String,
    /// Character offset (0-based) inside the parsed string, when known.
    pub offset: Option<usize>,
}

impl SyntaxError {
    fn new(message: impl Into<String>, offset: Option<usize>) -> Self {
        Self {
            message: message.into(),
            offset,
        }
    }
}

/// A parsed marker that remembers the text the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The marker as written (trimmed), kept for echoing into locks.
    pub text: String,
    /// The parsed tree used for evaluation.
    pub tree: MarkerTree,
}

impl fmt::Display for Marker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A named PEP 508 requirement (direct URL requirements are rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Normalised (PEP 503) project name.
    pub name: PackageName,
    /// Requested extras, normalised.
    pub extras: Vec<ExtraName>,
    /// Version specifiers; empty means any version.
    pub specifiers: VersionSpecifiers,
    /// Environment marker, if any.
    pub marker: Option<Marker>,
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.extras.is_empty() {
            let extras: Vec<String> = self.extras.iter().map(ToString::to_string).collect();
            write!(f, "[{}]", extras.join(","))?;
        }
        if !self.specifiers.is_empty() {
            write!(f, "{}", self.specifiers)?;
        }
        if let Some(marker) = &self.marker {
            write!(f, "; {}", marker.text)?;
        }
        Ok(())
    }
}

/// Is `name` a valid PEP 508 project name?
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Parse and normalise a project name.
pub fn parse_name(name: &str) -> Result<PackageName, SyntaxError> {
    let trimmed = name.trim();
    if !is_valid_name(trimmed) {
        return Err(SyntaxError::new(
            format!(
                "invalid package name `{trimmed}`: expected letters, digits, `.`, `-` or `_`, \
                 starting and ending with a letter or digit"
            ),
            Some(0),
        ));
    }
    PackageName::from_str(trimmed).map_err(|e| SyntaxError::new(e.to_string(), Some(0)))
}

/// Parse and normalise an extra name.
pub fn parse_extra(extra: &str) -> Result<ExtraName, SyntaxError> {
    let trimmed = extra.trim();
    if !is_valid_name(trimmed) {
        return Err(SyntaxError::new(
            format!("invalid extra name `{trimmed}`"),
            Some(0),
        ));
    }
    ExtraName::from_str(trimmed).map_err(|e| SyntaxError::new(e.to_string(), Some(0)))
}

/// Parse a PEP 440 version.
pub fn parse_version(text: &str) -> Result<Version, SyntaxError> {
    Version::from_str(text.trim())
        .map_err(|e| SyntaxError::new(format!("invalid version `{}`: {e}", text.trim()), Some(0)))
}

/// Parse a specifier set such as `>=1.2,<2`. `*` and the empty string mean
/// "any version", as in Pipfiles.
pub fn parse_specifiers(text: &str) -> Result<VersionSpecifiers, SyntaxError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed == "*" {
        return Ok(VersionSpecifiers::empty());
    }
    VersionSpecifiers::from_str(trimmed).map_err(|e| {
        SyntaxError::new(
            format!("invalid version specifier `{trimmed}`: {e}"),
            Some(0),
        )
    })
}

/// Marker warnings that mean pep508_rs dropped or mis-read a clause.
fn is_fatal_marker_warning(kind: MarkerWarningKind) -> bool {
    !matches!(
        kind,
        MarkerWarningKind::DeprecatedMarkerName | MarkerWarningKind::LexicographicComparison
    )
}

/// Collects marker warnings; fatal ones become the parse error.
#[derive(Default)]
struct StrictReporter {
    fatal: Option<String>,
}

impl pep508_rs::Reporter for StrictReporter {
    fn report(&mut self, kind: MarkerWarningKind, warning: String) {
        if is_fatal_marker_warning(kind) {
            if self.fatal.is_none() {
                self.fatal = Some(warning);
            }
        } else {
            tracing::warn!("{warning}");
        }
    }
}

/// The first character outside a quoted string that is not ASCII.
///
/// PEP 508 has none (names, operators and versions are ASCII; anything
/// else lives inside quotes), and pep508_rs 0.9 slices by characters where
/// it means bytes after such a character and panics: refuse it first.
fn non_ascii_outside_quotes(text: &str) -> Option<(usize, char)> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if !c.is_ascii() => return Some((i, c)),
            None => {}
        }
    }
    None
}

fn ascii_syntax(text: &str, what: &str) -> Result<(), SyntaxError> {
    match non_ascii_outside_quotes(text) {
        Some((at, c)) => Err(SyntaxError::new(
            format!("invalid {what} `{text}`: unexpected character `{c}` outside a quoted string"),
            Some(at),
        )),
        None => Ok(()),
    }
}

/// Check the extras right after the name (`name[a, b]`): each must start
/// and end with a letter or digit. pep508_rs 0.9 accepts `standard.` while
/// parsing and then panics when it builds the name; refuse it first.
fn extras_syntax(text: &str, name_end: usize) -> Result<(), SyntaxError> {
    let rest = &text[name_end..];
    let Some(inner) = rest.trim_start().strip_prefix('[') else {
        return Ok(());
    };
    let inner = inner.split(']').next().unwrap_or(inner);
    for extra in inner.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let body_ok = extra
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if body_ok && !(ends_ok(extra.chars().next()) && ends_ok(extra.chars().last())) {
            return Err(SyntaxError::new(
                format!(
                    "invalid extra `{extra}` in `{text}`: an extra starts and ends with a letter or digit"
                ),
                text.find(extra),
            ));
        }
    }
    Ok(())
}

/// Parse an environment marker such as `python_version >= "3.8"`.
pub fn parse_marker(text: &str) -> Result<Marker, SyntaxError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SyntaxError::new("empty marker", Some(0)));
    }
    ascii_syntax(trimmed, "marker")?;
    let mut reporter = StrictReporter::default();
    let tree = MarkerTree::parse_reporter(trimmed, &mut reporter).map_err(|e| {
        SyntaxError::new(
            format!("invalid marker `{trimmed}`: {}", e.message),
            Some(e.start),
        )
    })?;
    if let Some(problem) = reporter.fatal {
        return Err(SyntaxError::new(
            format!("invalid marker `{trimmed}`: {problem}"),
            None,
        ));
    }
    Ok(Marker {
        text: trimmed.to_string(),
        tree,
    })
}

/// Parse a named PEP 508 requirement (`name[extras] specifiers ; marker`).
///
/// Direct references (`name @ url`) are rejected with a clear error.
pub fn parse_requirement(text: &str) -> Result<Requirement, SyntaxError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SyntaxError::new(
            "empty requirement: expected a package name",
            Some(0),
        ));
    }
    // Guard the pep508_rs panic: validate the leading name token ourselves.
    let token_len = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        .unwrap_or(trimmed.len());
    let token = &trimmed[..token_len];
    if token.is_empty() {
        return Err(SyntaxError::new(
            format!("`{trimmed}` does not start with a package name"),
            Some(0),
        ));
    }
    parse_name(token)?;
    ascii_syntax(trimmed, "requirement")?;
    extras_syntax(trimmed, token_len)?;

    let mut reporter = StrictReporter::default();
    let parsed = pep508_rs::Requirement::<VerbatimUrl>::parse_reporter(
        trimmed,
        std::env::temp_dir(),
        &mut reporter,
    )
    .map_err(|e| SyntaxError::new(e.message.to_string(), Some(e.start)))?;
    if let Some(problem) = reporter.fatal {
        return Err(SyntaxError::new(
            format!("invalid marker in `{trimmed}`: {problem}"),
            None,
        ));
    }
    let specifiers = match parsed.version_or_url {
        None => VersionSpecifiers::empty(),
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => specifiers,
        Some(VersionOrUrl::Url(url)) => {
            return Err(SyntaxError::new(
                format!(
                    "direct URL requirement `{} @ {}` is not supported yet: \
                     thoth-rs resolves against its snapshot only",
                    parsed.name, url
                ),
                None,
            ));
        }
    };
    let marker = match trimmed.find(';') {
        Some(pos) if !parsed.marker.is_true() => Some(Marker {
            text: trimmed[pos + 1..].trim().to_string(),
            tree: parsed.marker,
        }),
        _ => None,
    };
    Ok(Requirement {
        name: parsed.name,
        extras: parsed.extras,
        specifiers,
        marker,
    })
}

/// Does `version` satisfy `specifiers` (PEP 440 semantics, pre-releases
/// admitted where the specifiers admit them)?
pub fn satisfies(version: &Version, specifiers: &VersionSpecifiers) -> bool {
    specifiers.contains(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_name_is_an_error_not_a_panic() {
        let err = parse_requirement("1. >= 1").unwrap_err();
        assert!(err.message.contains("invalid package name `1.`"), "{err}");
        let err = parse_requirement("foo_ >= 1").unwrap_err();
        assert!(err.message.contains("invalid package name"), "{err}");
    }

    #[test]
    fn non_ascii_outside_quotes_is_an_error_not_a_panic() {
        // Found by tests/inputs_fuzz.rs: pep508_rs panicked on these.
        let text = "platform_machine != '\u{e4}rm' a\u{fffd}d sys_platform == 'linux'";
        let err = parse_marker(text).unwrap_err();
        assert!(err.message.contains("unexpected character"), "{err}");
        let err = parse_requirement(&format!("foo ; {text}")).unwrap_err();
        assert!(err.message.contains("outside a quoted string"), "{err}");
        // An extra that pep508_rs accepts, then panics on.
        let err = parse_requirement("uvicorn[standard...]").unwrap_err();
        assert!(err.message.contains("invalid extra `standard...`"), "{err}");
        assert!(parse_requirement("uvicorn[standard, socks]").is_ok());
        // Inside quotes it is a value like any other.
        assert!(parse_marker("platform_machine != '\u{e4}rm'").is_ok());
    }

    #[test]
    fn bad_marker_clause_is_an_error() {
        let err = parse_requirement("foo ; python_version >= \"three\"").unwrap_err();
        assert!(err.message.contains("invalid marker"), "{err}");
        assert!(parse_marker("python_version >= 'three'").is_err());
    }

    #[test]
    fn full_requirement_round_trips() {
        let req = parse_requirement(
            "Requests[Security, socks] >=2.8.1, ==2.8.* ; python_version > \"3.8\"",
        )
        .unwrap();
        assert_eq!(req.name.as_ref(), "requests");
        assert_eq!(req.extras.len(), 2);
        assert!(satisfies(&parse_version("2.8.3").unwrap(), &req.specifiers));
        assert!(!satisfies(&parse_version("2.9").unwrap(), &req.specifiers));
        assert_eq!(req.marker.unwrap().text, "python_version > \"3.8\"");
    }

    #[test]
    fn url_requirement_is_rejected() {
        let err = parse_requirement("pip @ file:///tmp/pip-23.0-py3-none-any.whl").unwrap_err();
        assert!(err.message.contains("direct URL requirement"), "{err}");
    }

    #[test]
    fn star_is_any_version() {
        assert!(parse_specifiers("*").unwrap().is_empty());
        assert!(parse_specifiers(">=1,<").is_err());
    }

    #[test]
    fn versions_compare_by_pep440_not_text() {
        assert!(parse_version("10.0").unwrap() > parse_version("9.0").unwrap());
        assert!(parse_version("2.0rc1").unwrap() < parse_version("2.0").unwrap());
    }
}

/// (De)serialise [`VersionSpecifiers`] as their PEP 440 text.
pub mod spec_text {
    use super::VersionSpecifiers;
    use serde::{Deserialize, Deserializer, Serializer};

    /// As text.
    pub fn serialize<S: Serializer>(v: &VersionSpecifiers, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// From text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VersionSpecifiers, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_specifiers(&text).map_err(serde::de::Error::custom)
    }
}

/// (De)serialise `Option<VersionSpecifiers>` as their PEP 440 text.
pub mod opt_spec_text {
    use super::VersionSpecifiers;
    use serde::{Deserialize, Deserializer, Serializer};

    /// As text or null.
    pub fn serialize<S: Serializer>(
        v: &Option<VersionSpecifiers>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    /// From text or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<VersionSpecifiers>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| super::parse_specifiers(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
