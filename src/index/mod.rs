//! The package index, at the edge: which indexes the user configured, their
//! credentials, the HTTP client, and the parsers for what indexes serve
//! (project pages, core metadata files, wheels and source archives read in
//! part). Nothing here knows about resolution; the knowledge base
//! ([`crate::kb::layered`]) asks and remembers.
//!
//! Index URLs come only from the user's configuration (command line,
//! project file, pip's environment variables and configuration files) or
//! from a snapshot, which records the index it was built from as data.

pub mod http;
pub mod metadata;
pub mod page;
pub mod sdist;
pub mod setup_py;
pub mod zipmeta;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::Url;

/// One index: its simple-API root without credentials, and the
/// credentials that go with it (never shown, stored or logged).
#[derive(Clone, PartialEq, Eq)]
pub struct IndexUrl {
    /// The root URL without user information, ending in `/`.
    url: String,
    /// Credentials given in the URL itself.
    credentials: Option<(String, String)>,
    /// Verify TLS certificates.
    pub verify_tls: bool,
}

impl std::fmt::Debug for IndexUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials are left out on purpose.
        f.debug_tuple("IndexUrl").field(&self.url).finish()
    }
}

impl std::fmt::Display for IndexUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Why the index configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// A URL that does not parse (the URL without credentials, the
    /// parser's message).
    #[error("invalid index URL `{0}`: {1}")]
    Invalid(String, String),
    /// A scheme other than http, https or file.
    #[error("index URL `{0}` must use http, https or file")]
    Scheme(String),
    /// Nothing names an index.
    #[error(
        "no package index configured: pass --index-url, add a [[source]] to the Pipfile, \
         or set PIP_INDEX_URL"
    )]
    NoIndex,
}

impl IndexUrl {
    /// Parse an index URL; user information is split off.
    pub fn parse(text: &str) -> Result<Self, IndexError> {
        let mut url = Url::parse(text.trim())
            .map_err(|e| IndexError::Invalid(redact(text.trim()), e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https" | "file") {
            return Err(IndexError::Scheme(redact(text.trim())));
        }
        let user = percent_decode(url.username());
        let password = url.password().map(percent_decode);
        let credentials =
            (!user.is_empty() || password.is_some()).then(|| (user, password.unwrap_or_default()));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_fragment(None);
        let mut url = url.to_string();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(Self {
            url,
            credentials,
            verify_tls: true,
        })
    }

    /// The URL without credentials, ending in `/` (what is stored, shown
    /// and written to locks).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL as a lock's `[[source]]` writes it (no trailing `/`).
    pub fn without_slash(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    /// Page URL of project `name` (normalised).
    pub fn project_url(&self, name: &str) -> String {
        format!("{}{name}/", self.url)
    }

    /// Credentials given in the URL.
    pub fn credentials(&self) -> Option<&(String, String)> {
        self.credentials.as_ref()
    }

    /// `scheme://host[:port]`: credentials apply per realm.
    pub fn realm(&self) -> String {
        realm_of(&self.url).unwrap_or_default()
    }
}

/// `scheme://host[:port]` of a URL.
pub fn realm_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remove user information (`user:password@`) from every URL in `text`, for
/// messages and logs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("****@");
                out.push_str(&authority[i + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Which indexes a project may come from, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexConfig {
    /// Indexes; the first is the primary one.
    pub indexes: Vec<IndexUrl>,
    /// Projects pinned to one index (Pipfile `index = "name"`), by
    /// normalised name.
    pub pinned: BTreeMap<String, usize>,
    /// Where the list came from, for the report.
    pub origin: String,
    /// Project sources read as another URL (a legacy alias of the
    /// snapshot's index), one line each for the report.
    pub notes: Vec<String>,
}

impl IndexConfig {
    /// The indexes project `name` may come from, in order. A name found on
    /// one index is taken only from there (the first index that has it
    /// wins), so a later index cannot shadow it.
    pub fn for_project(&self, name: &str) -> Vec<&IndexUrl> {
        match self.pinned.get(name) {
            Some(&i) => self.indexes.get(i).into_iter().collect(),
            None => self.indexes.iter().collect(),
        }
    }

    /// The primary index.
    pub fn primary(&self) -> Option<&IndexUrl> {
        self.indexes.first()
    }
}

/// What the user configured, before it is turned into an [`IndexConfig`].
#[derive(Debug, Clone, Default)]
pub struct IndexSettings {
    /// `--index-url` on the command line.
    pub index_url: Option<String>,
    /// `--extra-index-url`s on the command line.
    pub extra_index_urls: Vec<String>,
    /// The project's sources in order (Pipfile `[[source]]`, requirements
    /// `-i` / `--extra-index-url`): (name, url, verify TLS).
    pub project_sources: Vec<(String, String, bool)>,
    /// Projects pinned to a named source.
    pub pinned: BTreeMap<String, String>,
    /// The index a snapshot was built from (the last resort).
    pub snapshot_index: Option<String>,
    /// Legacy URLs of that index the snapshot records ([`map_alias`]).
    pub snapshot_aliases: Vec<String>,
}

/// The scheme-less host (and port) of a URL, lower-cased.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A project source URL that names a legacy alias of `index` (same host as
/// one of `aliases`) is read as `index`'s scheme and host with the
/// source's own path, as Pipenv reads its index's legacy host name. `None`
/// when the URL is not an alias.
pub fn map_alias(url: &str, index: &str, aliases: &[String]) -> Option<String> {
    let host = host_of(url)?;
    if !aliases
        .iter()
        .any(|a| host_of(a).as_deref() == Some(host.as_str()))
    {
        return None;
    }
    let (scheme, rest) = index.split_once("://")?;
    let index_host = rest.split(['/', '?', '#']).next()?;
    let own = url.split_once("://").map_or(url, |(_, r)| r);
    let path = own.find('/').map_or("/", |i| &own[i..]);
    Some(format!("{scheme}://{index_host}{path}"))
}

/// Build the index list: the command line first, then the project's own
/// sources, then pip's environment variables and configuration files, then
/// the index the base snapshot records.
pub fn configure(settings: &IndexSettings) -> Result<IndexConfig, IndexError> {
    let mut notes = Vec::new();
    let sources: Vec<(String, String, bool)> = settings
        .project_sources
        .iter()
        .map(|(name, url, verify)| {
            let mapped = settings
                .snapshot_index
                .as_deref()
                .and_then(|index| map_alias(url, index, &settings.snapshot_aliases));
            match mapped {
                Some(to) => {
                    notes.push(format!(
                        "source `{name}` names {url}, a legacy name of the index the snapshot was built from; reading {to} instead (as Pipenv does)"
                    ));
                    (name.clone(), to, *verify)
                }
                None => (name.clone(), url.clone(), *verify),
            }
        })
        .collect();
    let mut urls: Vec<(String, bool)> = Vec::new();
    let origin;
    if let Some(url) = &settings.index_url {
        urls.push((url.clone(), true));
        urls.extend(settings.extra_index_urls.iter().map(|u| (u.clone(), true)));
        origin = "the command line".to_string();
    } else if !settings.project_sources.is_empty() {
        urls.extend(sources.iter().map(|(_, u, verify)| (u.clone(), *verify)));
        urls.extend(settings.extra_index_urls.iter().map(|u| (u.clone(), true)));
        origin = "the project's sources".to_string();
    } else if let Some((url, extra, from)) = pip_configuration() {
        urls.push((url, true));
        urls.extend(extra.into_iter().map(|u| (u, true)));
        urls.extend(settings.extra_index_urls.iter().map(|u| (u.clone(), true)));
        origin = from;
    } else if let Some(url) = &settings.snapshot_index {
        urls.push((url.clone(), true));
        urls.extend(settings.extra_index_urls.iter().map(|u| (u.clone(), true)));
        origin = "the index the snapshot was built from".to_string();
    } else {
        return Err(IndexError::NoIndex);
    }
    let mut indexes: Vec<IndexUrl> = Vec::new();
    for (url, verify) in urls {
        let mut parsed = IndexUrl::parse(&url)?;
        parsed.verify_tls = verify;
        if !indexes.iter().any(|i| i.url == parsed.url) {
            indexes.push(parsed);
        }
    }
    let mut pinned = BTreeMap::new();
    for (project, source) in &settings.pinned {
        let Some((_, url, _)) = sources.iter().find(|(name, _, _)| name == source) else {
            continue;
        };
        let url = IndexUrl::parse(url)?;
        if let Some(i) = indexes.iter().position(|x| x.url == url.url) {
            pinned.insert(project.clone(), i);
        }
    }
    Ok(IndexConfig {
        indexes,
        pinned,
        origin,
        notes,
    })
}

/// pip's index from `PIP_INDEX_URL` / `PIP_EXTRA_INDEX_URL`, else from its
/// configuration files (`PIP_CONFIG_FILE`, the site-wide, the user's
/// `~/.config/pip/pip.conf` and legacy `~/.pip/pip.conf`; later files win,
/// as in pip): (index, extra indexes, where it came from).
pub fn pip_configuration() -> Option<(String, Vec<String>, String)> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let env_extra: Vec<String> = env("PIP_EXTRA_INDEX_URL")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(url) = env("PIP_INDEX_URL") {
        return Some((url.trim().to_string(), env_extra, "PIP_INDEX_URL".into()));
    }
    let mut found: Option<(String, Vec<String>, String)> = None;
    for path in pip_config_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let values = parse_ini(&text);
        let get = |key: &str| {
            ["install", "global"]
                .iter()
                .find_map(|section| values.get(&((*section).to_string(), key.to_string())))
                .cloned()
        };
        if let Some(url) = get("index-url") {
            let extra = get("extra-index-url")
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default();
            found = Some((url, extra, path.display().to_string()));
        }
    }
    found.map(|(url, mut extra, from)| {
        extra.extend(env_extra);
        (url, extra, from)
    })
}

fn pip_config_files() -> Vec<PathBuf> {
    if let Some(file) = std::env::var_os("PIP_CONFIG_FILE") {
        if file == "os.devnull" || file == "/dev/null" {
            return Vec::new();
        }
        return vec![PathBuf::from(file)];
    }
    let mut out = vec![PathBuf::from("/etc/pip.conf")];
    if let Some(dirs) = std::env::var_os("XDG_CONFIG_DIRS") {
        out.extend(std::env::split_paths(&dirs).map(|d| d.join("pip").join("pip.conf")));
    } else {
        out.push(PathBuf::from("/etc/xdg/pip/pip.conf"));
    }
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        out.push(home.join(".pip").join("pip.conf"));
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        out.push(config.join("pip").join("pip.conf"));
    }
    out
}

/// A small INI reader for pip's configuration: `[section]`, `key = value`
/// or `key: value`, indented continuation lines, `#`/`;` comments.
fn parse_ini(text: &str) -> BTreeMap<(String, String), String> {
    let mut out: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut section = String::new();
    let mut last: Option<(String, String)> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(key) = &last
                && let Some(value) = out.get_mut(key)
            {
                value.push(' ');
                value.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            last = None;
            continue;
        }
        if let Some(at) = trimmed.find(['=', ':']) {
            let key = trimmed[..at].trim().to_ascii_lowercase().replace('_', "-");
            let value = trimmed[at + 1..].trim().to_string();
            let k = (section.clone(), key);
            out.insert(k.clone(), value);
            last = Some(k);
        }
    }
    out
}

/// Credentials by realm: from index URLs, then from a netrc file.
#[derive(Default, Clone)]
pub struct Credentials {
    by_realm: BTreeMap<String, (String, String)>,
    netrc: BTreeMap<String, (String, String)>,
    netrc_default: Option<(String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("realms", &self.by_realm.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials of `config`'s index URLs, plus the netrc file
    /// (`$NETRC`, else `~/.netrc`) when it exists.
    pub fn new(config: &IndexConfig) -> Self {
        let mut out = Self::default();
        for index in &config.indexes {
            if let Some(c) = index.credentials() {
                out.by_realm.insert(index.realm(), c.clone());
            }
        }
        let netrc = std::env::var_os("NETRC")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netrc")));
        if let Some(path) = netrc {
            out.read_netrc(&path);
        }
        out
    }

    fn read_netrc(&mut self, path: &Path) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let (machines, default) = parse_netrc(&text);
        self.netrc = machines;
        self.netrc_default = default;
    }

    /// Credentials for a request to `url`: those of an index on the same
    /// realm, else the netrc entry for the host.
    pub fn for_url(&self, url: &str) -> Option<&(String, String)> {
        let realm = realm_of(url)?;
        if let Some(c) = self.by_realm.get(&realm) {
            return Some(c);
        }
        let host = Url::parse(url).ok()?.host_str()?.to_string();
        self.netrc.get(&host).or(self.netrc_default.as_ref())
    }
}

/// Parse a netrc file: `machine HOST login USER password PASS` tokens
/// (any whitespace), `default` entries and `macdef` blocks (skipped).
/// Login and password.
type Login = (String, String);

fn parse_netrc(text: &str) -> (BTreeMap<String, Login>, Option<Login>) {
    let mut machines = BTreeMap::new();
    let mut default = None;
    let mut tokens = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        for word in line.split_whitespace() {
            if word == "macdef" {
                // A macro runs to the next empty line.
                for l in lines.by_ref() {
                    if l.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            tokens.push(word.to_string());
        }
    }
    let mut i = 0;
    let mut current: Option<Option<String>> = None;
    let mut login = String::new();
    let mut password = String::new();
    let mut flush =
        |current: &mut Option<Option<String>>, login: &mut String, password: &mut String| {
            if let Some(machine) = current.take() {
                let entry = (std::mem::take(login), std::mem::take(password));
                match machine {
                    Some(host) => {
                        machines.entry(host).or_insert(entry);
                    }
                    None => default = Some(entry),
                }
            }
        };
    while i < tokens.len() {
        match tokens[i].as_str() {
            "machine" => {
                flush(&mut current, &mut login, &mut password);
                current = tokens.get(i + 1).map(|h| Some(h.clone()));
                i += 2;
            }
            "default" => {
                flush(&mut current, &mut login, &mut password);
                current = Some(None);
                i += 1;
            }
            "login" => {
                login = tokens.get(i + 1).cloned().unwrap_or_default();
                i += 2;
            }
            "password" => {
                password = tokens.get(i + 1).cloned().unwrap_or_default();
                i += 2;
            }
            "account" => i += 2,
            _ => i += 1,
        }
    }
    flush(&mut current, &mut login, &mut password);
    (machines, default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_aliases_are_read_as_the_index_with_their_own_path() {
        let aliases = vec!["https://127.0.0.9/simple/".to_string()];
        let index = "https://127.0.0.1:8443/simple/";
        assert_eq!(
            map_alias("https://127.0.0.9/simple", index, &aliases).as_deref(),
            Some("https://127.0.0.1:8443/simple")
        );
        // Scheme and case of the host do not matter; the path is kept.
        assert_eq!(
            map_alias("http://127.0.0.9/pypi/simple/", index, &aliases).as_deref(),
            Some("https://127.0.0.1:8443/pypi/simple/")
        );
        assert_eq!(map_alias("https://127.0.0.8/simple", index, &aliases), None);
        assert_eq!(map_alias("https://127.0.0.9/simple", index, &[]), None);
        // Credentials in the source do not hide its host.
        assert!(map_alias("https://u:p@127.0.0.9/simple", index, &aliases).is_some());
    }

    #[test]
    fn credentials_are_split_off_and_redacted() {
        let url = IndexUrl::parse("https://alice:s%40cret@127.0.0.1:8080/simple").unwrap();
        assert_eq!(url.as_str(), "https://127.0.0.1:8080/simple/");
        assert_eq!(
            url.credentials(),
            Some(&("alice".to_string(), "s@cret".to_string()))
        );
        assert_eq!(url.realm(), "https://127.0.0.1:8080");
        assert!(!format!("{url} {url:?}").contains("cret"));
        assert_eq!(
            redact("GET http://bob:pw@127.0.0.1/simple/x/ failed; see https://127.0.0.1/y"),
            "GET http://****@127.0.0.1/simple/x/ failed; see https://127.0.0.1/y"
        );
    }

    #[test]
    fn netrc_machines_and_default() {
        let (machines, default) = parse_netrc(
            "machine 127.0.0.1 login carol password one\n\
             macdef init\n cd /\n\n\
             machine other.invalid\n  login dave\n  password two\ndefault login eve password three\n",
        );
        assert_eq!(machines["127.0.0.1"], ("carol".into(), "one".into()));
        assert_eq!(machines["other.invalid"], ("dave".into(), "two".into()));
        assert_eq!(default, Some(("eve".into(), "three".into())));
    }

    #[test]
    fn pip_ini() {
        let values = parse_ini(
            "[global]\nindex-url = http://127.0.0.1:1/simple\nextra_index_url =\n    http://127.0.0.1:2/simple\n    http://127.0.0.1:3/simple\n# comment\n[install]\ntimeout: 5\n",
        );
        assert_eq!(
            values[&("global".to_string(), "index-url".to_string())],
            "http://127.0.0.1:1/simple"
        );
        assert_eq!(
            values[&("global".to_string(), "extra-index-url".to_string())]
                .split_whitespace()
                .count(),
            2
        );
    }

    #[test]
    fn first_index_wins_and_pins_hold() {
        let settings = IndexSettings {
            project_sources: vec![
                ("main".into(), "http://127.0.0.1:1/simple".into(), true),
                ("private".into(), "http://127.0.0.1:2/simple/".into(), true),
            ],
            pinned: [("internal-lib".to_string(), "private".to_string())].into(),
            ..IndexSettings::default()
        };
        let config = configure(&settings).unwrap();
        assert_eq!(config.indexes.len(), 2);
        assert_eq!(config.for_project("requests").len(), 2);
        let only = config.for_project("internal-lib");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].as_str(), "http://127.0.0.1:2/simple/");
    }
}
