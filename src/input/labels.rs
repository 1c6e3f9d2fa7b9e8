//! Labels: `KEY=VALUE,KEY=VALUE` pairs that select prescriptions
//! (`allow-cve=CVE-…`, `requester=ci`, …).

use std::collections::BTreeMap;

/// What is wrong with a label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// A pair without `=`.
    #[error("label `{0}` has no `=`: expected KEY=VALUE")]
    NoEquals(String),
    /// A key with other characters.
    #[error("invalid label key `{0}`: use letters, digits, `.`, `_` and `-`")]
    Key(String),
    /// `KEY=`.
    #[error("label `{0}` has an empty value")]
    Empty(String),
    /// The same key twice (key, first value, second value).
    #[error("label `{0}` given twice (`{1}` and `{2}`)")]
    Twice(String, String, String),
}

/// Parse `KEY=VALUE,...`. Keys are `[A-Za-z0-9._-]+`; values may not be empty.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, LabelError> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| LabelError::NoEquals(pair.to_string()))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(LabelError::Key(key.to_string()));
        }
        if value.is_empty() {
            return Err(LabelError::Empty(key.to_string()));
        }
        if let Some(previous) = out.insert(key.to_string(), value.to_string()) {
            return Err(LabelError::Twice(
                key.to_string(),
                previous,
                value.to_string(),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let labels = parse_labels("requester=ci, allow-cve=PYSEC-2021-1").unwrap();
        assert_eq!(labels["requester"], "ci");
        assert_eq!(labels["allow-cve"], "PYSEC-2021-1");
        assert!(parse_labels("oops").is_err());
        assert!(parse_labels("a=1,a=2").is_err());
        assert!(parse_labels("a=").is_err());
    }
}
