//! Stage 5: writers. A resolved stack becomes a Pipfile.lock (byte for byte
//! as Pipenv lays it out, with Pipenv's `_meta.hash`), a pinned
//! requirements.txt with hashes, or a PEP 751 pylock.toml.

pub mod json;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::input::{Project, Source};
use crate::kb::{KbError, KnowledgeBase};
use crate::resolve::{Resolution, ResolvedPackage};

/// TOML value → JSON value (datetimes as their text, as tomlkit's would
/// not survive `json.dumps` either; they do not occur in Pipfiles).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The source Pipenv assumes when a Pipfile has none: named `pypi`, at the
/// index the snapshot was built from (without a trailing `/`, as Pipenv
/// spells its default).
pub fn default_source(index_url: &str) -> Source {
    Source {
        name: "pypi".into(),
        url: index_url.trim_end_matches('/').to_string(),
        verify_ssl: true,
    }
}

fn source_json(s: &Source) -> Value {
    json!({"name": s.name, "url": s.url, "verify_ssl": s.verify_ssl})
}

/// What Pipenv hashes for `_meta.hash`: `[[source]]`, `[requires]`,
/// `[packages]` and `[dev-packages]` as written (`[pipenv]` and `[thoth]`
/// are not part of it).
pub fn pipfile_hash_input(raw: &toml::Table, default: &Source) -> Value {
    let get = |k: &str| raw.get(k).map(toml_to_json);
    let sources = get("source").unwrap_or_else(|| json!([source_json(default)]));
    json!({
        "_meta": {
            "requires": get("requires").unwrap_or_else(|| json!({})),
            "sources": sources,
        },
        "default": get("packages").unwrap_or_else(|| json!({})),
        "develop": get("dev-packages").unwrap_or_else(|| json!({})),
    })
}

/// sha256 of the compact, key-sorted, ASCII-escaped JSON of `input`.
pub fn hash_of(input: &Value) -> String {
    hex::encode(Sha256::digest(json::compact(input).as_bytes()))
}

/// `_meta.hash.sha256` for a project. For a Pipfile it is Pipenv's hash;
/// other project files are hashed as the Pipfile they are equivalent to
/// (requirements as `name = "spec"`), so a changed input is still noticed.
pub fn project_hash(project: &Project, default: &Source) -> String {
    if let Some(p) = &project.pipfile {
        return hash_of(&pipfile_hash_input(&p.raw, default));
    }
    let section = |reqs: &[crate::input::DeclaredRequirement]| {
        let mut m = Map::new();
        for r in reqs {
            let spec = r.requirement.specifiers.to_string();
            m.insert(
                r.requirement.name.to_string(),
                Value::String(if spec.is_empty() { "*".into() } else { spec }),
            );
        }
        Value::Object(m)
    };
    let sources: Vec<Value> = if project.sources.is_empty() {
        vec![source_json(default)]
    } else {
        project.sources.iter().map(source_json).collect()
    };
    hash_of(&json!({
        "_meta": {"requires": requires_json(project), "sources": sources},
        "default": section(&project.requirements),
        "develop": section(&project.dev_requirements),
    }))
}

fn requires_json(project: &Project) -> Value {
    match &project.pipfile {
        Some(p) => p
            .raw
            .get("requires")
            .map(toml_to_json)
            .unwrap_or_else(|| json!({})),
        None => match &project.python_version {
            Some(v) => json!({"python_version": v}),
            None => json!({}),
        },
    }
}

/// What the writers need besides the stack.
pub struct LockContext<'a> {
    /// The project.
    pub project: &'a Project,
    /// The knowledge base (hashes, files).
    pub kb: &'a dyn KnowledgeBase,
    /// Index the snapshot was built from.
    pub index_url: String,
    /// Include development packages.
    pub dev: bool,
}

fn norm(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

impl LockContext<'_> {
    /// The project's sources (a legacy alias of the index written as the
    /// index, as the search read it), or the default one.
    fn sources(&self) -> Vec<Source> {
        if self.project.sources.is_empty() {
            return vec![default_source(&self.index_url)];
        }
        let aliases = &self.kb.meta().index_aliases;
        self.project
            .sources
            .iter()
            .map(|s| Source {
                url: crate::index::map_alias(&s.url, &self.index_url, aliases)
                    .unwrap_or_else(|| s.url.clone()),
                ..s.clone()
            })
            .collect()
    }

    /// The index a locked package came from (without a trailing `/`).
    fn package_index(&self, p: &ResolvedPackage) -> Result<String, KbError> {
        Ok(self
            .kb
            .indexes(&p.name, &p.version)?
            .first()
            .map_or_else(|| norm(&self.index_url), |u| norm(u)))
    }

    /// The sources a lock lists: the project's own (or the default one),
    /// then every other index a locked package came from.
    fn lock_sources(&self, resolution: &Resolution) -> Result<Vec<Source>, KbError> {
        let mut sources = self.sources();
        for p in &resolution.packages {
            let url = self.package_index(p)?;
            if !sources.iter().any(|s| norm(&s.url) == url) {
                sources.push(Source {
                    name: format!("index-{}", sources.len() + 1),
                    url,
                    verify_ssl: true,
                });
            }
        }
        Ok(sources)
    }

    /// Source name a lock entry carries: the source whose URL is the
    /// package's index, else the first source.
    fn index_name(&self, sources: &[Source], p: &ResolvedPackage) -> Result<String, KbError> {
        let url = self.package_index(p)?;
        Ok(sources
            .iter()
            .find(|s| norm(&s.url) == url)
            .or_else(|| sources.first())
            .map(|s| s.name.clone())
            .unwrap_or_else(|| "pypi".into()))
    }
}

fn entry(p: &ResolvedPackage, ctx: &LockContext, index: &str) -> Result<Value, KbError> {
    let mut m = Map::new();
    let hashes = ctx.kb.hashes(&p.name, &p.version)?;
    if !p.extras.is_empty() {
        let mut extras = p.extras.clone();
        extras.sort();
        m.insert("extras".into(), json!(extras));
    }
    m.insert("hashes".into(), json!(hashes));
    m.insert("index".into(), json!(index));
    if let Some(markers) = &p.markers {
        m.insert("markers".into(), json!(markers));
    }
    m.insert("version".into(), json!(format!("=={}", p.version)));
    Ok(Value::Object(m))
}

/// The Pipfile.lock object for `resolution`.
pub fn pipfile_lock(resolution: &Resolution, ctx: &LockContext) -> Result<Value, KbError> {
    let sources = ctx.lock_sources(resolution)?;
    let mut default = Map::new();
    let mut develop = Map::new();
    for p in &resolution.packages {
        let index = ctx.index_name(&sources, p)?;
        if p.default {
            default.insert(p.name.clone(), entry(p, ctx, &index)?);
        }
        if p.develop && ctx.dev {
            develop.insert(p.name.clone(), entry(p, ctx, &index)?);
        }
    }
    let default_src = default_source(&ctx.index_url);
    Ok(json!({
        "_meta": {
            "hash": {"sha256": project_hash(ctx.project, &default_src)},
            "pipfile-spec": 6,
            "requires": requires_json(ctx.project),
            "sources": sources.iter().map(source_json).collect::<Vec<_>>(),
        },
        "default": default,
        "develop": develop,
    }))
}

/// Pipfile.lock text: Pipenv's layout and a final newline.
pub fn render_pipfile_lock(lock: &Value) -> String {
    let mut s = json::pretty(lock);
    s.push('\n');
    s
}

/// A pinned requirements.txt with hashes and `# via` comments.
pub fn requirements_txt(resolution: &Resolution, ctx: &LockContext) -> Result<String, KbError> {
    let mut out = String::new();
    let _ = writeln!(out, "#");
    let _ = writeln!(
        out,
        "# Written by thoth-rs {} from {}; do not edit by hand.",
        env!("CARGO_PKG_VERSION"),
        ctx.project
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
    );
    let _ = writeln!(out, "#");
    // The project's own indexes, and any other a locked package came from
    // (a lone default index is not written, as pip-compile does).
    let sources = ctx.lock_sources(resolution)?;
    if !ctx.project.sources.is_empty() || sources.len() > 1 {
        for (i, s) in sources.iter().enumerate() {
            let flag = if i == 0 {
                "--index-url"
            } else {
                "--extra-index-url"
            };
            let _ = writeln!(out, "{flag} {}", s.url);
        }
    }
    let project_file = ctx
        .project
        .path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    for p in &resolution.packages {
        if !(p.default || (p.develop && ctx.dev)) {
            continue;
        }
        out.push('\n');
        let _ = write!(out, "{}==", p.name);
        let _ = write!(out, "{}", p.version);
        if let Some(m) = &p.markers {
            let _ = write!(out, " ; {m}");
        }
        for h in ctx.kb.hashes(&p.name, &p.version)? {
            let _ = write!(out, " \\\n    --hash={h}");
        }
        out.push('\n');
        let mut via: Vec<String> = p
            .via
            .iter()
            .map(|v| match &v.from {
                Some((name, _)) => name.clone(),
                None => format!("-r {project_file}"),
            })
            .collect();
        via.sort();
        via.dedup();
        match via.as_slice() {
            [one] => {
                let _ = writeln!(out, "    # via {one}");
            }
            many => {
                let _ = writeln!(out, "    # via");
                for v in many {
                    let _ = writeln!(out, "    #   {v}");
                }
            }
        }
    }
    Ok(out)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A PEP 751 pylock.toml for the target environment.
///
/// Each file carries the URL the snapshot recorded for it (schema 2); files
/// from a schema-1 snapshot have none, and installers then find them on the
/// package's `index` by name and hash.
pub fn pylock(
    resolution: &Resolution,
    ctx: &LockContext,
    environment_marker: &str,
    requires_python: Option<&str>,
) -> Result<String, KbError> {
    let mut out = String::new();
    let _ = writeln!(out, "lock-version = \"1.0\"");
    let _ = writeln!(out, "environments = [{}]", toml_str(environment_marker));
    if let Some(rp) = requires_python {
        let _ = writeln!(out, "requires-python = {}", toml_str(rp));
    }
    let _ = writeln!(out, "created-by = \"thoth-rs\"");
    for p in &resolution.packages {
        if !(p.default || (p.develop && ctx.dev)) {
            continue;
        }
        let index = ctx.package_index(p)?;
        let _ = writeln!(out, "\n[[packages]]");
        let _ = writeln!(out, "name = {}", toml_str(&p.name));
        let _ = writeln!(out, "version = {}", toml_str(&p.version.to_string()));
        if let Some(m) = &p.markers {
            let _ = writeln!(out, "marker = {}", toml_str(m));
        }
        let _ = writeln!(out, "index = {}", toml_str(&index));
        let mut files = ctx.kb.files(&p.name, &p.version)?;
        if files.is_empty() {
            continue;
        }
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        let (wheels, sdists): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|d| d.filename.ends_with(".whl"));
        let file_fields = |out: &mut String, d: &crate::kb::Distribution| {
            let _ = writeln!(out, "name = {}", toml_str(&d.filename));
            if let Some(t) = &d.upload_time {
                let _ = writeln!(out, "upload-time = {t}");
            }
            if let Some(url) = &d.url {
                let _ = writeln!(out, "url = {}", toml_str(url));
            }
            if let Some(size) = d.size {
                let _ = writeln!(out, "size = {size}");
            }
            if let Some(h) = &d.sha256 {
                let _ = writeln!(out, "hashes = {{sha256 = {}}}", toml_str(h));
            }
        };
        if let Some(sdist) = sdists
            .iter()
            .find(|d| d.filename.ends_with(".tar.gz") || d.filename.ends_with(".zip"))
        {
            let _ = writeln!(out, "\n[packages.sdist]");
            file_fields(&mut out, sdist);
        }
        for w in wheels {
            let _ = writeln!(out, "\n[[packages.wheels]]");
            file_fields(&mut out, &w);
        }
    }
    Ok(out)
}

/// A JSON summary of one resolved stack (report `products[].resolved`).
pub fn packages_json(resolution: &Resolution) -> BTreeMap<String, Value> {
    resolution
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                json!({
                    "version": p.version.to_string(),
                    "default": p.default,
                    "develop": p.develop,
                    "via": p.via,
                    "newer_rejected": p.newer_rejected.iter().map(|(v, why)| json!({"version": v, "reason": why})).collect::<Vec<_>>(),
                    "held_back": p.held_back.as_ref().map(|(v, why)| json!({"version": v, "reason": why})),
                    "score": p.score,
                }),
            )
        })
        .collect()
}
