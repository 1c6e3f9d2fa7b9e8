//! Reading YAML values with a key path for every problem: the helpers the
//! section parsers share.

use serde_yaml::{Mapping, Value};

use super::schema::{
    Diagnostic, IndexMatch, Message, MessageType, PackageMatcher, Selector, VersionCheck,
};
use crate::python::{self, VersionSpecifiers};
use std::collections::BTreeMap;

/// Collects diagnostics for one unit.
pub struct Reader<'a> {
    /// File name for messages.
    pub file: &'a str,
    /// Unit name for messages.
    pub unit: String,
    /// Errors.
    pub errors: &'a mut Vec<Diagnostic>,
    /// Warnings.
    pub warnings: &'a mut Vec<Diagnostic>,
}

pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Reader<'_> {
    pub(crate) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: self.file.into(),
            unit: self.unit.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    pub(crate) fn warning(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.into(),
            unit: self.unit.clone(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// A map with only `allowed` keys; unknown keys are errors.
    pub(crate) fn map<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            self.error(path, format!("expected a map, found {}", describe(v)));
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => self.error(
                    &join(path, k),
                    format!("unknown key (expected one of {})", allowed.join(", ")),
                ),
                None => self.error(path, "keys must be strings"),
            }
        }
        Some(m)
    }

    pub(crate) fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.error(path, "expected a non-empty string");
                None
            }
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    path,
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    pub(crate) fn name(&mut self, v: &Value, path: &str) -> Option<String> {
        let text = self.string(v, path)?;
        match python::parse_name(&text) {
            Ok(n) => Some(n.to_string()),
            Err(e) => {
                self.error(path, e.message);
                None
            }
        }
    }

    pub(crate) fn specifier(&mut self, v: &Value, path: &str) -> Option<VersionSpecifiers> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.error(
                    path,
                    format!("expected a version specifier, found {}", describe(other)),
                );
                return None;
            }
        };
        match python::parse_specifiers(&text) {
            Ok(s) => Some(s),
            Err(e) => {
                // `==git`, `==0.9j`: legacy (non-PEP 440) versions. Installers
                // cannot produce such a release, so the condition never holds.
                let legacy = text
                    .trim()
                    .strip_prefix("==")
                    .filter(|v| !v.is_empty() && !v.contains([',', '<', '>', '!', '=']));
                match legacy {
                    Some(v) => {
                        self.warning(path, format!("`{v}` is not a PEP 440 version: this condition never matches (dead unit)"));
                        python::parse_specifiers("<0.dev0").ok()
                    }
                    None => {
                        self.error(path, e.message);
                        None
                    }
                }
            }
        }
    }

    pub(crate) fn version_check(&mut self, v: Option<&Value>, path: &str) -> VersionCheck {
        match v {
            None => VersionCheck::Any,
            Some(Value::Null) => VersionCheck::NotPresent,
            Some(v) => self
                .specifier(v, path)
                .map_or(VersionCheck::Any, VersionCheck::Spec),
        }
    }

    /// A list, or `{not: list}`.
    pub(crate) fn selector<T>(
        &mut self,
        v: &Value,
        path: &str,
        mut item: impl FnMut(&mut Self, &Value, &str) -> Option<T>,
    ) -> Option<Selector<T>> {
        let (negated, list, list_path) = match v {
            Value::Mapping(m) => {
                self.map(v, path, &["not"])?;
                match m.get("not") {
                    Some(list) => (true, list, join(path, "not")),
                    None => {
                        self.error(path, "expected a list or {not: [...]}");
                        return None;
                    }
                }
            }
            other => (false, other, path.to_string()),
        };
        let Value::Sequence(items) = list else {
            self.error(
                &list_path,
                format!("expected a list, found {}", describe(list)),
            );
            return None;
        };
        let mut values = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(x) = item(self, it, &format!("{list_path}[{i}]")) {
                values.push(x);
            }
        }
        Some(Selector { negated, values })
    }

    pub(crate) fn nullable_int(&mut self, v: &Value, path: &str) -> Option<Option<i64>> {
        match v {
            Value::Null => Some(None),
            Value::Number(n) if n.as_i64().is_some() => Some(n.as_i64()),
            other => {
                self.error(
                    path,
                    format!("expected an integer or null, found {}", describe(other)),
                );
                None
            }
        }
    }

    pub(crate) fn nullable_string(&mut self, v: &Value, path: &str) -> Option<Option<String>> {
        match v {
            Value::Null => Some(None),
            _ => self.string(v, path).map(Some),
        }
    }

    pub(crate) fn message(&mut self, v: &Value, path: &str) -> Option<Message> {
        let m = self.map(
            v,
            path,
            &[
                "type",
                "message",
                "link",
                "package_name",
                "advisory",
                "cve_id",
                "cve_name",
                "version_range",
                "url",
            ],
        )?;
        let kind = match m.get("type").and_then(Value::as_str) {
            Some("INFO") => MessageType::Info,
            Some("WARNING") => MessageType::Warning,
            Some("ERROR") => MessageType::Error,
            Some(other) => {
                self.error(
                    &join(path, "type"),
                    format!("unknown message type `{other}` (expected INFO, WARNING or ERROR)"),
                );
                return None;
            }
            None => {
                self.error(
                    &join(path, "type"),
                    "missing message type (INFO, WARNING or ERROR)",
                );
                return None;
            }
        };
        let message = match m.get("message") {
            Some(v) => self.string(v, &join(path, "message"))?,
            None => {
                self.error(&join(path, "message"), "missing message text");
                return None;
            }
        };
        let link = match m.get("link") {
            None => Vec::new(),
            Some(v) => {
                let text = self.string(v, &join(path, "link"))?;
                let links: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                for l in &links {
                    let short = l.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    });
                    if !(short || l.starts_with("http://") || l.starts_with("https://")) {
                        self.error(
                            &join(path, "link"),
                            format!("`{l}` is neither an http(s) URL nor a short link id"),
                        );
                    }
                }
                links
            }
        };
        let package_name = match m.get("package_name") {
            Some(v) => Some(self.name(v, &join(path, "package_name"))?),
            None => None,
        };
        let mut extra = BTreeMap::new();
        for key in ["advisory", "cve_id", "cve_name", "version_range", "url"] {
            if let Some(v) = m.get(key) {
                extra.insert(key.to_string(), self.string(v, &join(path, key))?);
            }
        }
        Some(Message {
            kind,
            message,
            link,
            package_name,
            extra,
        })
    }

    pub(crate) fn messages(&mut self, v: &Value, path: &str) -> Vec<Message> {
        let Value::Sequence(items) = v else {
            self.error(
                path,
                format!("expected a list of messages, found {}", describe(v)),
            );
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| self.message(it, &format!("{path}[{i}]")))
            .collect()
    }

    pub(crate) fn index_match(&mut self, v: &Value, path: &str) -> Option<IndexMatch> {
        match v {
            Value::Mapping(m) => {
                self.map(v, path, &["not"])?;
                let url = self.string(m.get("not")?, &join(path, "not"))?;
                Some(IndexMatch {
                    negated: true,
                    url: url.trim_end_matches('/').to_string(),
                })
            }
            _ => self.string(v, path).map(|url| IndexMatch {
                negated: false,
                url: url.trim_end_matches('/').to_string(),
            }),
        }
    }

    pub(crate) fn matcher(
        &mut self,
        v: &Value,
        path: &str,
        name_required: bool,
    ) -> Option<PackageMatcher> {
        let m = self.map(v, path, &["name", "version", "index_url", "develop"])?;
        let name = match m.get("name") {
            Some(v) => Some(self.name(v, &join(path, "name"))?),
            None if name_required => {
                self.error(&join(path, "name"), "missing package name");
                return None;
            }
            None => None,
        };
        let version = match m.get("version") {
            Some(v) => Some(self.specifier(v, &join(path, "version"))?),
            None => None,
        };
        let legacy_warned = self
            .warnings
            .last()
            .is_some_and(|w| w.path == join(path, "version") && w.unit == self.unit);
        if let Some(spec) = &version
            && !legacy_warned
            && never_matches(spec)
        {
            self.warning(
                &join(path, "version"),
                format!("`{spec}` can never match (PEP 440 commas mean AND): dead unit"),
            );
        }
        let index_url = match m.get("index_url") {
            Some(v) => Some(self.index_match(v, &join(path, "index_url"))?),
            None => None,
        };
        let develop = match m.get("develop") {
            Some(v) => Some(self.boolean(v, &join(path, "develop"))?),
            None => None,
        };
        Some(PackageMatcher {
            name,
            version,
            index_url,
            develop,
        })
    }

    pub(crate) fn matchers(&mut self, v: &Value, path: &str) -> Vec<PackageMatcher> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, it)| self.matcher(it, &format!("{path}[{i}]"), true))
                .collect(),
            other => {
                self.error(
                    path,
                    format!("expected a list of packages, found {}", describe(other)),
                );
                Vec::new()
            }
        }
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Can a specifier set match no version at all? Checked on a probe set of
/// versions built from the specifier's own boundaries.
pub fn never_matches(spec: &VersionSpecifiers) -> bool {
    if spec.is_empty() {
        return false;
    }
    let mut probes: Vec<python::Version> = Vec::new();
    for s in spec.iter() {
        let v = s.version().clone();
        probes.push(v.clone());
        let release = v.release().to_vec();
        let mut up = release.clone();
        if let Some(last) = up.last_mut() {
            *last += 1;
        }
        let mut deeper = release.clone();
        deeper.push(1);
        for r in [up, deeper] {
            probes.push(python::Version::new(r));
        }
        if let Some(first) = release.first()
            && *first > 0
        {
            let mut down = release.clone();
            down[0] -= 1;
            probes.push(python::Version::new(down));
        }
    }
    probes.push(python::Version::new([0]));
    !probes.iter().any(|p| spec.contains(p))
}
