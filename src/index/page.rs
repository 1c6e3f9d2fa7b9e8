//! Parsing simple-index project pages: PEP 691 JSON and PEP 503 HTML.
//! File URLs may be relative; they are joined against the page URL. A page
//! becomes a [`ProjectRecord`] whose releases' dependency metadata is not
//! fetched yet.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Url;
use serde::Deserialize;

use crate::python::{Version, is_valid_name, parse_name, parse_version};
use crate::record::{Distribution, ProjectRecord, Release, Requires, normalise_time};

/// `Accept` header for project pages: PEP 691 JSON first, HTML otherwise.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// Why an index answer is not a usable project page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// JSON served as HTML or the other way round.
    #[error(
        "the answer contradicts its Content-Type {content_type} ({bytes} bytes starting {start:?})"
    )]
    ContentType {
        /// The Content-Type header.
        content_type: String,
        /// The body's size.
        bytes: usize,
        /// Its first characters.
        start: String,
    },
    /// Neither links nor an API version: an error page served with 200.
    #[error("the answer is not a project page ({bytes} bytes{})", .content_type.as_ref().map(|t| format!(" of {t}")).unwrap_or_default())]
    NotAPage {
        /// The body's size.
        bytes: usize,
        /// The Content-Type header, if any.
        content_type: Option<String>,
    },
    /// The URL the page came from does not parse (URL, parser's message).
    #[error("bad page URL {0}: {1}")]
    Url(String, String),
    /// A JSON page that is not PEP 691 JSON (what, parser's message).
    #[error("invalid {0}: {1}")]
    Json(&'static str, String),
}

/// What a project page gives: the project's display name, when the page
/// carries one, and its files.
pub type Page = (Option<String>, Vec<IndexFile>);

/// Parse a project page from raw bytes, refusing answers that are not a
/// simple-API page at all (an error page served with status 200).
pub fn parse_page(
    page_url: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Page, PageError> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(body),
    };
    let start = text.trim_start();
    let json_type = content_type.is_some_and(|t| t.contains("json"));
    let html_type = content_type.is_some_and(|t| t.contains("html"));
    if json_type != start.starts_with('{') && (json_type || html_type) {
        return Err(PageError::ContentType {
            content_type: content_type.unwrap_or_default().to_string(),
            bytes: body.len(),
            start: start.chars().take(24).collect(),
        });
    }
    if start.starts_with('{') {
        return parse_project_page(page_url, start);
    }
    // A simple-API HTML page links its files (`<a href=…>`) or, when it
    // lists none, still says which API version it is; an error page served
    // with status 200 does neither.
    let lower_all = text.to_ascii_lowercase();
    let looks_page = lower_all.contains("<a ") || lower_all.contains("pypi:repository-version");
    if !looks_page {
        return Err(PageError::NotAPage {
            bytes: body.len(),
            content_type: content_type.map(str::to_string),
        });
    }
    parse_project_page(page_url, &text)
}

/// Group a page's files into releases, newest first. Files whose name
/// carries no version of `name` (or an invalid one) are left out. The
/// dependency metadata of every release is [`Requires::NotFetched`].
pub fn to_record(
    name: &str,
    display_name: Option<String>,
    files: Vec<IndexFile>,
    index: Option<Arc<str>>,
) -> ProjectRecord {
    let mut by_version: BTreeMap<Version, Vec<IndexFile>> = BTreeMap::new();
    // The files of a release spell its version alike: parse each spelling once.
    let mut parsed: std::collections::HashMap<String, Option<Version>> =
        std::collections::HashMap::new();
    for file in files {
        let Some(v) = file_version(name, &file.filename) else {
            continue;
        };
        let version = match parsed.get(&v) {
            Some(known) => known.clone(),
            None => {
                let p = parse_version(&v).ok();
                parsed.insert(v, p.clone());
                p
            }
        };
        let Some(version) = version else { continue };
        by_version.entry(version).or_default().push(file);
    }
    let releases = by_version
        .into_iter()
        .rev()
        .map(|(version, mut files)| {
            files.sort_by(|a, b| a.filename.cmp(&b.filename));
            files.dedup_by(|a, b| a.filename == b.filename);
            Release {
                version,
                upload_time: files.iter().filter_map(|f| f.upload_time.clone()).min(),
                yanked: files.iter().all(|f| f.yanked.is_some()),
                yanked_reason: files
                    .iter()
                    .find_map(|f| f.yanked.clone())
                    .filter(|r| !r.is_empty()),
                requires_python: None,
                distributions: files
                    .into_iter()
                    .map(|f| Distribution {
                        yanked: f.yanked.is_some(),
                        filename: f.filename,
                        sha256: f.sha256,
                        size: f.size,
                        upload_time: f.upload_time,
                        requires_python: f.requires_python,
                        url: Some(f.url),
                    })
                    .collect(),
                dependencies: Requires::NotFetched,
                provides_extras: Vec::new(),
                advisories: Vec::new(),
            }
        })
        .collect();
    ProjectRecord {
        name: name.to_string(),
        display_name: display_name.unwrap_or_else(|| name.to_string()),
        releases,
        index,
    }
}

/// One file listed on a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// File name.
    pub filename: String,
    /// Absolute URL (fragment removed).
    pub url: String,
    /// sha256 hex, when given.
    pub sha256: Option<String>,
    /// data-requires-python / requires-python.
    pub requires_python: Option<String>,
    /// `None` = not yanked; `Some(reason)` (possibly empty) = yanked.
    pub yanked: Option<String>,
    /// Upload time (PEP 700), normalised.
    pub upload_time: Option<String>,
    /// Size in bytes (PEP 700).
    pub size: Option<i64>,
}

#[derive(Deserialize)]
struct JsonPage {
    #[serde(default)]
    name: Option<String>,
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: Hashes,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: serde_json::Value,
    #[serde(default, rename = "upload-time")]
    upload_time: Option<String>,
    #[serde(default)]
    size: Option<i64>,
}

/// The digests of a file; only sha256 is kept.
#[derive(Deserialize, Default)]
struct Hashes {
    #[serde(default)]
    sha256: Option<String>,
}

fn join(base: &Url, href: &str) -> Option<String> {
    // Absolute URLs without a fragment, the common case, need no parsing.
    if (href.starts_with("https://") || href.starts_with("http://"))
        && !href.contains('#')
        && !href.contains(char::is_whitespace)
    {
        return Some(href.to_string());
    }
    let mut url = base.join(href).ok()?;
    url.set_fragment(None);
    Some(url.to_string())
}

/// Parse a project page; `page_url` is where it was fetched from.
pub fn parse_project_page(page_url: &str, body: &str) -> Result<Page, PageError> {
    let base =
        Url::parse(page_url).map_err(|e| PageError::Url(page_url.to_string(), e.to_string()))?;
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        let page: JsonPage = serde_json::from_str(trimmed)
            .map_err(|e| PageError::Json("PEP 691 JSON", e.to_string()))?;
        let files = page
            .files
            .into_iter()
            .filter_map(|f| {
                Some(IndexFile {
                    url: join(&base, &f.url)?,
                    sha256: f.hashes.sha256.map(|mut h| {
                        h.make_ascii_lowercase();
                        h
                    }),
                    requires_python: f.requires_python.filter(|s| !s.trim().is_empty()),
                    yanked: match f.yanked {
                        serde_json::Value::Bool(true) => Some(String::new()),
                        serde_json::Value::String(reason) => Some(reason),
                        _ => None,
                    },
                    upload_time: f.upload_time.as_deref().and_then(normalise_time),
                    size: f.size,
                    filename: f.filename,
                })
            })
            .collect();
        return Ok((page.name, files));
    }
    Ok((None, parse_html(&base, body)))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut search = 0;
    while let Some(pos) = lower[search..].find(name) {
        let at = search + pos;
        search = at + name.len();
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let rest = tag[at + name.len()..].trim_start();
        if !before_ok {
            continue;
        }
        let Some(rest) = rest.strip_prefix('=') else {
            // Boolean attribute such as `data-yanked`.
            return Some(String::new());
        };
        let rest = rest.trim_start();
        let quote = rest.chars().next()?;
        if quote == '"' || quote == '\'' {
            let end = rest[1..].find(quote)?;
            return Some(unescape(&rest[1..=end]));
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>')
            .unwrap_or(rest.len());
        return Some(unescape(&rest[..end]));
    }
    None
}

fn parse_html(base: &Url, body: &str) -> Vec<IndexFile> {
    let mut out = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(start) = lower[pos..].find("<a ") {
        let start = pos + start;
        let Some(tag_end) = body[start..].find('>') else {
            break;
        };
        let tag = &body[start..start + tag_end];
        let Some(close) = lower[start + tag_end..].find("</a>") else {
            break;
        };
        let text = unescape(body[start + tag_end + 1..start + tag_end + close].trim());
        pos = start + tag_end + close;
        let Some(href) = attribute(tag, "href") else {
            continue;
        };
        let sha256 = href
            .split_once("#sha256=")
            .map(|(_, h)| h.to_ascii_lowercase());
        let Some(url) = join(base, &href) else {
            continue;
        };
        let filename = if text.is_empty() {
            url.rsplit('/').next().unwrap_or_default().to_string()
        } else {
            text
        };
        out.push(IndexFile {
            filename,
            url,
            sha256,
            requires_python: attribute(tag, "data-requires-python").filter(|s| !s.is_empty()),
            yanked: attribute(tag, "data-yanked"),
            upload_time: attribute(tag, "data-upload-time")
                .as_deref()
                .and_then(normalise_time),
            size: None,
        });
    }
    out
}

#[derive(Deserialize)]
struct ApiProject {
    info: ApiInfo,
    #[serde(default)]
    releases: std::collections::BTreeMap<String, Vec<ApiFile>>,
}

#[derive(Deserialize)]
struct ApiInfo {
    name: String,
}

#[derive(Deserialize)]
struct ApiFile {
    filename: String,
    url: String,
    #[serde(default)]
    digests: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    requires_python: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    upload_time_iso_8601: Option<String>,
    #[serde(default)]
    upload_time: Option<String>,
    #[serde(default)]
    yanked: bool,
    #[serde(default)]
    yanked_reason: Option<String>,
}

/// The project JSON API root that goes with a simple index URL
/// (`…/simple/` → `…/pypi/`), when the URL has that shape.
pub fn json_api_root(index_url: &str) -> Option<String> {
    let trimmed = index_url.trim_end_matches('/');
    trimmed
        .strip_suffix("/simple")
        .map(|root| format!("{root}/pypi/"))
}

/// Parse a project JSON API document (`<root>/<name>/json`).
pub fn parse_json_api(doc_url: &str, body: &[u8]) -> Result<Page, PageError> {
    let base =
        Url::parse(doc_url).map_err(|e| PageError::Url(doc_url.to_string(), e.to_string()))?;
    let doc: ApiProject =
        serde_json::from_slice(body).map_err(|e| PageError::Json("project JSON", e.to_string()))?;
    let mut files = Vec::new();
    for list in doc.releases.into_values() {
        for f in list {
            let Some(url) = join(&base, &f.url) else {
                continue;
            };
            files.push(IndexFile {
                filename: f.filename,
                url,
                sha256: f.digests.get("sha256").map(|h| h.to_ascii_lowercase()),
                requires_python: f.requires_python.filter(|s| !s.trim().is_empty()),
                yanked: f.yanked.then(|| f.yanked_reason.unwrap_or_default()),
                upload_time: f
                    .upload_time_iso_8601
                    .or(f.upload_time)
                    .as_deref()
                    .and_then(normalise_time),
                size: f.size,
            });
        }
    }
    Ok((Some(doc.info.name), files))
}

/// The version a file belongs to, from its name (`None` for unknown kinds).
pub fn file_version(project: &str, filename: &str) -> Option<String> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').nth(1).map(str::to_string);
    }
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tgz"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    // Sdist names are `<name>-<version>` where the name may itself hold dashes.
    for (i, _) in stem.match_indices('-') {
        let (name, version) = (&stem[..i], &stem[i + 1..]);
        if is_valid_name(name) && parse_name(name).is_ok_and(|n| n.as_ref() == project) {
            return Some(version.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_page_with_relative_urls_and_attributes() {
        let body = r#"<!DOCTYPE html><html><body>
<a href="../../packages/ab/cd/six-1.16.0-py2.py3-none-any.whl#sha256=8ABB2F1D86890A2DFB989F9A77CFCFD3E47C2A354B01111771326F8AA26E0254" data-requires-python="&gt;=2.7, !=3.0.*" data-upload-time="2021-05-05T14:18:17.237834Z">six-1.16.0-py2.py3-none-any.whl</a><br/>
<a href="https://127.0.0.1/f/six-1.0.tar.gz" data-yanked="broken build">six-1.0.tar.gz</a>
</body></html>"#;
        let (_, files) = parse_project_page("http://127.0.0.1:9/simple/six/", body).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:9/packages/ab/cd/six-1.16.0-py2.py3-none-any.whl"
        );
        assert_eq!(
            files[0].sha256.as_deref(),
            Some("8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254")
        );
        assert_eq!(files[0].requires_python.as_deref(), Some(">=2.7, !=3.0.*"));
        assert_eq!(files[0].yanked, None);
        assert_eq!(
            files[0].upload_time.as_deref(),
            Some("2021-05-05T14:18:17Z")
        );
        assert_eq!(files[1].yanked.as_deref(), Some("broken build"));
    }

    #[test]
    fn json_page() {
        let body = r#"{"meta":{"api-version":"1.1"},"name":"six","files":[{"filename":"six-1.16.0-py2.py3-none-any.whl","url":"../../f/six.whl","hashes":{"sha256":"AA"},"requires-python":">=2.7","yanked":false,"upload-time":"2021-05-05T14:18:17.237834Z","size":11053,"core-metadata":{"sha256":"x"}}]}"#;
        let (name, files) = parse_project_page("http://127.0.0.1:9/simple/six/", body).unwrap();
        assert_eq!(name.as_deref(), Some("six"));
        assert_eq!(files[0].url, "http://127.0.0.1:9/f/six.whl");
        assert_eq!(
            files[0].upload_time.as_deref(),
            Some("2021-05-05T14:18:17Z")
        );
        assert_eq!(files[0].size, Some(11053));
    }

    #[test]
    fn json_api_document() {
        assert_eq!(
            json_api_root("http://127.0.0.1:9/simple/").as_deref(),
            Some("http://127.0.0.1:9/pypi/")
        );
        assert_eq!(json_api_root("http://127.0.0.1:9/root/index/"), None);
        let body = br#"{"info":{"name":"Six"},"releases":{"1.16.0":[{"filename":"six-1.16.0-py2.py3-none-any.whl","url":"../../files/six-1.16.0-py2.py3-none-any.whl","digests":{"sha256":"AB"},"requires_python":">=2.7","size":11053,"upload_time_iso_8601":"2021-05-05T14:18:17.237834Z","yanked":true,"yanked_reason":"bad"}]}}"#;
        let (name, files) = parse_json_api("http://127.0.0.1:9/pypi/six/json", body).unwrap();
        assert_eq!(name.as_deref(), Some("Six"));
        assert_eq!(
            files[0].url,
            "http://127.0.0.1:9/files/six-1.16.0-py2.py3-none-any.whl"
        );
        assert_eq!(files[0].yanked.as_deref(), Some("bad"));
        assert_eq!(
            files[0].upload_time.as_deref(),
            Some("2021-05-05T14:18:17Z")
        );
    }

    #[test]
    fn versions_from_filenames() {
        assert_eq!(
            file_version("python-dateutil", "python-dateutil-2.8.2.tar.gz").as_deref(),
            Some("2.8.2")
        );
        assert_eq!(
            file_version(
                "python-dateutil",
                "python_dateutil-2.9.0.post0-py2.py3-none-any.whl"
            )
            .as_deref(),
            Some("2.9.0.post0")
        );
        assert_eq!(
            file_version("zope-interface", "zope.interface-6.0.tar.gz").as_deref(),
            Some("6.0")
        );
        assert_eq!(file_version("x", "x-1.0.exe"), None);
    }
}
