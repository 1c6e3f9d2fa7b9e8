//! Library usage: which modules and symbols a project's own Python code
//! uses, as units' `should_include.library_usage` matches it.
//!
//! The project's `.py` files are parsed with tree-sitter's Python grammar
//! (a real parser that keeps going past syntax it does not know, so newer
//! syntax costs a few symbols, never the scan). Imports bind names to
//! dotted module paths; every attribute chain on a bound name and every
//! imported name is a used symbol, fully qualified
//! (`import numpy as np; np.linalg.norm` gives `numpy.linalg` and
//! `numpy.linalg.norm`), and calls of Python's dynamic-code builtins are
//! `__builtins__.exec` and so on. The result has the shape Thoth's static
//! analysis reported: library → symbols.
//!
//! A usage file (`--library-usage FILE`) may be given instead, in either
//! shape Thoth knew: `{"report": {lib: [symbols]}, "version": …}` or
//! `{lib: [symbols]}`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Library → symbols used, sorted.
pub type LibraryUsage = BTreeMap<String, Vec<String>>;

/// Directories never scanned: environments, caches, build output, VCS.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".tox",
    ".nox",
    ".venv",
    "venv",
    "env",
    ".env",
    "site-packages",
    "node_modules",
    "__pycache__",
    "build",
    "dist",
    ".mypy_cache",
    ".pytest_cache",
];
/// Files larger than this are not parsed (generated code, vendored data).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;
/// At most this many files are parsed; the rest are counted as skipped.
const MAX_FILES: usize = 20_000;
/// Builtins whose calls are reported (`__builtins__.NAME`).
const BUILTINS: &[&str] = &["eval", "exec", "compile", "__import__", "open", "input"];

/// What a scan read.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// The usage found.
    pub usage: LibraryUsage,
    /// Python files parsed.
    pub files: usize,
    /// Files left out (too large, unreadable, over the file limit).
    pub skipped: usize,
    /// Files the parser reported syntax errors in (their readable parts
    /// still count).
    pub with_errors: usize,
}

/// Errors reading a usage file.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a usage report.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key.
        problem: Problem,
    },
}

/// What is wrong with a usage file's text.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// Not JSON at all.
    #[error("not JSON (line {line}, column {column}): {0}", line = .0.line(), column = .0.column())]
    NotJson(serde_json::Error),
    /// A value of the wrong kind under `key`.
    #[error("{key}: expected {expected}")]
    Shape {
        /// Where (`report.tempfile[2]`, `the top level`).
        key: String,
        /// What was expected there.
        expected: &'static str,
    },
}

/// Read a usage file in either of Thoth's shapes.
pub fn read(path: &Path) -> Result<LibraryUsage, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsageError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|problem| UsageError::Invalid {
        path: path.to_path_buf(),
        problem,
    })
}

fn parse(text: &str) -> Result<LibraryUsage, Problem> {
    let shape = |key: String, expected| Problem::Shape { key, expected };
    let value: serde_json::Value = serde_json::from_str(text).map_err(Problem::NotJson)?;
    let (map, at) = match value.get("report") {
        Some(report) => (report, "report"),
        None => (&value, ""),
    };
    let map = map
        .as_object()
        .ok_or_else(|| shape(key_or_top(at).to_string(), "a map of library to symbols"))?;
    let mut usage = LibraryUsage::new();
    for (library, symbols) in map {
        let key = if at.is_empty() {
            library.clone()
        } else {
            format!("{at}.{library}")
        };
        let list = symbols
            .as_array()
            .ok_or_else(|| shape(key.clone(), "a list of symbols"))?;
        let mut names = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let s = s
                .as_str()
                .ok_or_else(|| shape(format!("{key}[{i}]"), "a string"))?;
            names.push(s.to_string());
        }
        names.sort();
        names.dedup();
        usage.insert(library.clone(), names);
    }
    Ok(usage)
}

fn key_or_top(at: &str) -> &str {
    if at.is_empty() { "the top level" } else { at }
}

/// Scan the Python files under `root`.
pub fn scan(root: &Path) -> Scan {
    let mut files = Vec::new();
    let mut skipped = 0;
    collect_files(root, &mut files, &mut skipped);
    files.sort();
    if files.len() > MAX_FILES {
        skipped += files.len() - MAX_FILES;
        files.truncate(MAX_FILES);
    }
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .expect("the bundled grammar matches the tree-sitter version");
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut scan = Scan::default();
    for path in files {
        let Ok(source) = std::fs::read(&path) else {
            skipped += 1;
            continue;
        };
        let Some(tree) = parser.parse(&source, None) else {
            skipped += 1;
            continue;
        };
        scan.files += 1;
        if tree.root_node().has_error() {
            scan.with_errors += 1;
        }
        for symbol in symbols(&tree, &source) {
            let library = symbol.split('.').next().unwrap_or_default().to_string();
            found.entry(library).or_default().insert(symbol);
        }
    }
    scan.skipped = skipped;
    scan.usage = found
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect();
    scan
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>, skipped: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) && !name.ends_with(".egg-info") {
                collect_files(&path, out, skipped);
            }
        } else if kind.is_file() && name.ends_with(".py") {
            match entry.metadata() {
                Ok(m) if m.len() <= MAX_FILE_BYTES => out.push(path),
                _ => *skipped += 1,
            }
        }
    }
}

/// The fully qualified symbols one file uses.
fn symbols(tree: &tree_sitter::Tree, source: &[u8]) -> BTreeSet<String> {
    let text = |n: tree_sitter::Node| n.utf8_text(source).unwrap_or_default().to_string();
    // Names bound by imports, anywhere in the file, to dotted paths.
    let mut bound: HashMap<String, String> = HashMap::new();
    let mut used = BTreeSet::new();
    let mut nodes = Vec::new();
    let mut cursor = tree.walk();
    preorder(&mut cursor, &mut nodes);
    for node in &nodes {
        match node.kind() {
            "import_statement" => {
                let mut c = node.walk();
                for name in node.children_by_field_name("name", &mut c) {
                    match name.kind() {
                        "dotted_name" => {
                            let path = text(name);
                            let first = path.split('.').next().unwrap_or_default().to_string();
                            bound.insert(first.clone(), first);
                            used.insert(path);
                        }
                        "aliased_import" => {
                            let (Some(module), Some(alias)) = (
                                name.child_by_field_name("name"),
                                name.child_by_field_name("alias"),
                            ) else {
                                continue;
                            };
                            bound.insert(text(alias), text(module));
                            used.insert(text(module));
                        }
                        _ => {}
                    }
                }
            }
            "import_from_statement" => {
                let Some(module) = node.child_by_field_name("module_name") else {
                    continue;
                };
                // Relative imports are the project's own modules.
                if module.kind() != "dotted_name" {
                    continue;
                }
                let module = text(module);
                used.insert(module.clone());
                let mut c = node.walk();
                for name in node.children_by_field_name("name", &mut c) {
                    let (imported, alias) = match name.kind() {
                        "dotted_name" => (text(name), text(name)),
                        "aliased_import" => match (
                            name.child_by_field_name("name"),
                            name.child_by_field_name("alias"),
                        ) {
                            (Some(n), Some(a)) => (text(n), text(a)),
                            _ => continue,
                        },
                        _ => continue,
                    };
                    let path = format!("{module}.{imported}");
                    bound.insert(alias, path.clone());
                    used.insert(path);
                }
            }
            _ => {}
        }
    }
    for node in &nodes {
        match node.kind() {
            "attribute" => {
                if let Some(path) = dotted(*node, source, &bound) {
                    used.insert(path);
                }
            }
            "call" => {
                let Some(function) = node.child_by_field_name("function") else {
                    continue;
                };
                if function.kind() == "identifier" {
                    let name = text(function);
                    if let Some(path) = bound.get(&name) {
                        used.insert(path.clone());
                    } else if BUILTINS.contains(&name.as_str()) {
                        used.insert(format!("__builtins__.{name}"));
                    }
                }
            }
            _ => {}
        }
    }
    used
}

/// Every node of the tree, parents first.
fn preorder<'t>(cursor: &mut tree_sitter::TreeCursor<'t>, out: &mut Vec<tree_sitter::Node<'t>>) {
    loop {
        out.push(cursor.node());
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
        }
    }
}

/// `a.b.c` on a name bound by an import, fully qualified; `None` when the
/// chain starts anywhere else (a call, a subscript, a local name).
fn dotted(
    node: tree_sitter::Node,
    source: &[u8],
    bound: &HashMap<String, String>,
) -> Option<String> {
    let mut parts = Vec::new();
    let mut at = node;
    loop {
        match at.kind() {
            "attribute" => {
                parts.push(
                    at.child_by_field_name("attribute")?
                        .utf8_text(source)
                        .ok()?,
                );
                at = at.child_by_field_name("object")?;
            }
            "identifier" => {
                let base = bound.get(at.utf8_text(source).ok()?)?;
                parts.reverse();
                return Some(format!("{base}.{}", parts.join(".")));
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(code: &str) -> BTreeSet<String> {
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&tree_sitter_python::LANGUAGE.into())
            .unwrap();
        let tree = parser.parse(code, None).unwrap();
        symbols(&tree, code.as_bytes())
    }

    #[test]
    fn imports_and_attribute_chains_are_fully_qualified() {
        let got = used(
            "import numpy as np\nimport os.path\nfrom tempfile import mktemp as mk\nfrom . import local\n\
             def f():\n    import pandas\n    return np.linalg.norm(pandas.read_excel('x')), mk(), os.path.join('a')\n\
             x = something.else_\neval('1')\n",
        );
        for want in [
            "numpy",
            "numpy.linalg",
            "numpy.linalg.norm",
            "os.path",
            "os.path.join",
            "tempfile",
            "tempfile.mktemp",
            "pandas",
            "pandas.read_excel",
            "__builtins__.eval",
        ] {
            assert!(got.contains(want), "{want} missing from {got:?}");
        }
        assert!(
            !got.iter()
                .any(|s| s.starts_with("something") || s.contains("local")),
            "{got:?}"
        );
    }

    #[test]
    fn syntax_the_grammar_does_not_know_costs_only_that_statement() {
        let got = used("import tempfile\ndef f(:\n    pass\nname = tempfile.mktemp()\n");
        assert!(got.contains("tempfile.mktemp"), "{got:?}");
    }

    #[test]
    fn both_report_shapes_are_read_and_bad_ones_named() {
        let thamos =
            parse(r#"{"report": {"tempfile": ["tempfile.mktemp"]}, "version": "0.1"}"#).unwrap();
        let plain = parse(r#"{"tempfile": ["tempfile.mktemp"]}"#).unwrap();
        assert_eq!(thamos, plain);
        let err = parse(r#"{"report": {"tempfile": [1]}}"#).unwrap_err();
        assert_eq!(err.to_string(), "report.tempfile[0]: expected a string");
        let err = parse("[1]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the top level: expected a map of library to symbols"
        );
    }
}
