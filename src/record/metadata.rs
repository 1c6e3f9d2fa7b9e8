//! Core metadata (`METADATA` / PEP 658 `.metadata` files): the headers the
//! resolver needs, parsed into [`Dependency`] lists.

use super::Dependency;
use crate::python;

/// The parts of a METADATA file thoth-rs keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Name`.
    pub name: Option<String>,
    /// `Version`.
    pub version: Option<String>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Requires-Dist`, parsed.
    pub dependencies: Vec<Dependency>,
    /// `Provides-Extra`, normalised.
    pub provides_extras: Vec<String>,
    /// Requires-Dist lines that could not be parsed (kept out of the list).
    pub skipped: Vec<String>,
}

/// Parse METADATA text (RFC 822-style headers; the body after the first
/// blank line is the description and is ignored).
pub fn parse_metadata(text: &str) -> CoreMetadata {
    let mut out = CoreMetadata::default();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    for (key, value) in headers {
        match key.as_str() {
            "name" => out.name = Some(value),
            "version" => out.version = Some(value),
            "requires-python" => out.requires_python = Some(value).filter(|v| !v.is_empty()),
            "provides-extra" => {
                if let Ok(extra) = python::parse_extra(&value) {
                    let extra = extra.to_string();
                    if !out.provides_extras.contains(&extra) {
                        out.provides_extras.push(extra);
                    }
                }
            }
            "requires-dist" => match dependency_from_requirement(&value) {
                Some(dep) => out.dependencies.push(dep),
                None => out.skipped.push(value),
            },
            _ => {}
        }
    }
    out
}

/// Turn one Requires-Dist value into a [`Dependency`].
pub fn dependency_from_requirement(text: &str) -> Option<Dependency> {
    let req = python::parse_requirement(text).ok()?;
    let marker = req.marker.as_ref().map(|m| m.text.clone());
    let extra = marker.as_deref().and_then(gating_extra);
    Some(Dependency {
        name: req.name.to_string(),
        extras: req.extras.iter().map(ToString::to_string).collect(),
        specifier: req.specifiers.to_string(),
        marker,
        extra,
    })
}

/// The extra named by an `extra == "…"` clause of a marker, normalised.
pub fn gating_extra(marker: &str) -> Option<String> {
    let bytes = marker.as_bytes();
    let mut start = 0;
    while let Some(pos) = marker[start..].find("extra") {
        let at = start + pos;
        start = at + 5;
        let before_ok =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let rest = marker[at + 5..].trim_start();
        if !before_ok || !rest.starts_with("==") {
            continue;
        }
        let rest = rest[2..].trim_start();
        let quote = rest.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let end = rest[1..].find(quote)?;
        return python::parse_extra(&rest[1..=end])
            .ok()
            .map(|e| e.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUESTS: &str = "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nSummary: Python HTTP for Humans.\nRequires-Python: >=3.7\nLicense: Apache 2.0\nProvides-Extra: security\nProvides-Extra: socks\nProvides-Extra: use_chardet_on_py3\nRequires-Dist: charset-normalizer (<4,>=2)\nRequires-Dist: idna (<4,>=2.5)\nRequires-Dist: urllib3 (<3,>=1.21.1)\nRequires-Dist: certifi (>=2017.4.17)\nRequires-Dist: PySocks (!=1.5.7,>=1.5.6) ; extra == 'socks'\nRequires-Dist: chardet (<6,>=3.0.2) ; extra == 'use_chardet_on_py3'\n\nRequires-Dist: not-a-header\n";

    #[test]
    fn requests_metadata() {
        let m = parse_metadata(REQUESTS);
        assert_eq!(m.name.as_deref(), Some("requests"));
        assert_eq!(m.requires_python.as_deref(), Some(">=3.7"));
        assert_eq!(
            m.provides_extras,
            ["security", "socks", "use-chardet-on-py3"]
        );
        let names: Vec<&str> = m.dependencies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "charset-normalizer",
                "idna",
                "urllib3",
                "certifi",
                "pysocks",
                "chardet"
            ]
        );
        assert_eq!(m.dependencies[4].extra.as_deref(), Some("socks"));
        assert_eq!(
            m.dependencies[5].extra.as_deref(),
            Some("use-chardet-on-py3")
        );
        assert_eq!(m.dependencies[0].extra, None);
        assert!(m.skipped.is_empty());
    }

    #[test]
    fn gating_extra_variants() {
        assert_eq!(
            gating_extra("python_version < \"3.8\" and extra == \"test\"").as_deref(),
            Some("test")
        );
        assert_eq!(
            gating_extra("extra=='Dev_Tools'").as_deref(),
            Some("dev-tools")
        );
        assert_eq!(gating_extra("python_version >= '3'"), None);
    }
}
