//! Reading the pins of an existing lock file, whatever tool wrote it.

/// A locked package as a lock file states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    /// Normalised name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// The packages a lock file pins: a Pipfile.lock (`default`, and `develop`
/// with `dev`), a requirements.txt of `name==version` lines (hashes and
/// includes allowed), or a pylock.toml (`[[packages]]`). The kind is told
/// by the content: a JSON object, a TOML document with `lock-version`,
/// else requirements.
pub fn read_lock(
    path: &std::path::Path,
    dev: bool,
) -> Result<Vec<Locked>, crate::input::InputError> {
    use crate::input::InputError;
    let text = crate::input::error::read_to_string(path)?;
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let is_json = start.starts_with('{');
    let is_toml = !is_json
        && text
            .lines()
            .any(|l| l.trim_start().starts_with("lock-version") || l.trim() == "[[packages]]");
    let mut out: Vec<Locked> = Vec::new();
    if is_toml {
        let doc: toml::Table = toml::from_str(&text)
            .map_err(|e| crate::input::error::from_toml_error(path, &text, &e))?;
        let packages = doc
            .get("packages")
            .and_then(toml::Value::as_array)
            .ok_or_else(|| {
                InputError::file(path, "no [[packages]]: not a pylock.toml").key("packages")
            })?;
        for (i, p) in packages.iter().enumerate() {
            let field = |k: &str| p.get(k).and_then(toml::Value::as_str);
            let (Some(name), Some(version)) = (field("name"), field("version")) else {
                return Err(InputError::file(path, "a package without name or version")
                    .key(format!("packages[{i}]")));
            };
            let name = crate::python::parse_name(name).map_err(|e| {
                InputError::file(path, e.message).key(format!("packages[{i}].name"))
            })?;
            out.push(Locked {
                name: name.to_string(),
                version: version.to_string(),
            });
        }
    } else if is_json {
        let lock = crate::input::pipfile_lock::PipfileLock::from_path(path)?;
        let sections = if dev {
            vec![&lock.default, &lock.develop]
        } else {
            vec![&lock.default]
        };
        for section in sections {
            for p in section.values() {
                if !out.iter().any(|l| l.name == p.name) {
                    out.push(Locked {
                        name: p.name.clone(),
                        version: p.version.to_string(),
                    });
                }
            }
        }
    } else {
        let file = crate::input::requirements::RequirementsFile::from_path(path)?;
        for d in &file.requirements {
            let r = &d.requirement;
            let pinned = r.specifiers.iter().find(|s| {
                matches!(
                    s.operator(),
                    crate::python::Operator::Equal | crate::python::Operator::ExactEqual
                ) && !s.to_string().contains('*')
            });
            let Some(pin) = pinned else {
                return Err(InputError::file(path, format!("{r}: not pinned with =="))
                    .at_line(d.origin.line));
            };
            out.push(Locked {
                name: r.name.to_string(),
                version: pin.version().to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
