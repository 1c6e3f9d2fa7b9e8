//! Labels: `KEY=VALUE,KEY=VALUE` pairs that select prescriptions
//! (`allow-cve=CVE-…`, `requester=ci`, …).

use std::collections::BTreeMap;

/// Parse `KEY=VALUE,...`. Keys are `[A-Za-z0-9._-]+`; values may not be empty.
pub fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("label `{pair}` has no `=`: expected KEY=VALUE"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "invalid label key `{key}`: use letters, digits, `.`, `_` and `-`"
            ));
        }
        if value.is_empty() {
            return Err(format!("label `{key}` has an empty value"));
        }
        if let Some(previous) = out.insert(key.to_string(), value.to_string()) {
            return Err(format!(
                "label `{key}` given twice (`{previous}` and `{value}`)"
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
