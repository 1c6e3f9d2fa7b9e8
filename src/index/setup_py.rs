//! Reading a `setup.py` (and `setup.cfg`) without running it, for source
//! archives that carry no trustworthy metadata otherwise.
//!
//! Only literal values are taken: `install_requires`, `extras_require` and
//! `python_requires` given in the `setup(...)` call as literal lists,
//! dicts and strings, or as the name of a variable assigned exactly once to
//! such a literal and never changed afterwards (`.append`, `+=` …). A call
//! with `**kwargs`, a value computed by code, or `pbr` makes the answer
//! "dynamic", and the caller reports the release as unavailable with that
//! reason. An argument that is absent falls back to `setup.cfg`'s
//! `[options]` (setuptools' declarative configuration), else to nothing.

/// What `setup.py` says about one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<T> {
    /// Not given.
    Absent,
    /// Given as a literal.
    Literal(T),
    /// Given, but computed; why it cannot be read.
    Dynamic(Dynamic),
}

/// Why a value in `setup.py` or `setup.cfg` cannot be read without running
/// code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dynamic {
    /// There is no `setup(...)` call.
    #[error("setup.py has no setup() call")]
    NoCall,
    /// The call's parentheses never close.
    #[error("setup.py's setup() call is not closed")]
    Unclosed,
    /// `setup(**kwargs)`.
    #[error("setup() takes its arguments from a computed mapping (**kwargs)")]
    Kwargs,
    /// `setup(pbr=True)`.
    #[error("setup() uses pbr, which reads requirements at build time")]
    Pbr,
    /// A variable assigned twice.
    #[error("`{0}` is assigned more than once")]
    Reassigned(String),
    /// A variable changed with `+=` and the like.
    #[error("`{0}` is changed in place")]
    ChangedInPlace(String),
    /// A variable changed by a method call.
    #[error("`{0}` is changed by .{1}()")]
    ChangedBy(String, String),
    /// A variable never assigned a literal.
    #[error("`{0}` is not assigned a literal")]
    NotLiteral(String),
    /// The value is an expression.
    #[error("the value is computed")]
    Computed,
    /// One item of a list is an expression.
    #[error("a list item is computed")]
    ComputedItem,
    /// One dict entry is not `literal: value`.
    #[error("a dict item is computed")]
    ComputedEntry,
    /// A dict key is an expression.
    #[error("a dict key is computed")]
    ComputedKey,
    /// `python_requires` is an expression.
    #[error("python_requires is computed")]
    ComputedPythonRequires,
    /// `setup.cfg` takes the value from a file (`file:`/`attr:`).
    #[error("setup.cfg reads {0} from a file")]
    FromFile(String),
}

/// The dependency arguments of a `setup(...)` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupArgs {
    /// `install_requires`.
    pub install_requires: Found<Vec<String>>,
    /// `extras_require` (extra, requirements).
    pub extras_require: Found<Vec<(String, Vec<String>)>>,
    /// `python_requires`.
    pub python_requires: Found<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    /// A string that is not a plain literal (f-string).
    Fmt,
    Punct(char),
    /// `**`.
    Splat,
    /// `==`, `+=`, `-=` and similar two-character operators.
    Op2,
    Newline,
    Other,
}

fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    while i < b.len() {
        let c = b[i] as char;
        match c {
            '#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            '\n' => {
                if depth <= 0 {
                    out.push(Tok::Newline);
                }
                i += 1;
            }
            '\\' if b.get(i + 1) == Some(&b'\n') => i += 2,
            c if c.is_whitespace() => i += 1,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                let is_prefix = word.len() <= 2
                    && word
                        .chars()
                        .all(|ch| matches!(ch.to_ascii_lowercase(), 'r' | 'b' | 'u' | 'f'));
                if is_prefix && i < b.len() && (b[i] == b'\'' || b[i] == b'"') {
                    let raw = word.to_ascii_lowercase().contains('r');
                    let fmt = word.to_ascii_lowercase().contains('f');
                    let (text, next) = string_at(src, i, raw);
                    i = next;
                    out.push(if fmt { Tok::Fmt } else { Tok::Str(text) });
                } else {
                    out.push(Tok::Ident(word.to_string()));
                }
            }
            '\'' | '"' => {
                let (text, next) = string_at(src, i, false);
                i = next;
                out.push(Tok::Str(text));
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Tok::Other);
            }
            '*' if b.get(i + 1) == Some(&b'*') => {
                out.push(Tok::Splat);
                i += 2;
            }
            '=' | '+' | '-' | '!' | '<' | '>' | '|' | '&' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Op2);
                i += 2;
            }
            _ => {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    _ => {}
                }
                out.push(Tok::Punct(c));
                i += c.len_utf8();
            }
        }
    }
    out
}

/// A string literal starting at `at` (a quote): its value and the index
/// after it.
fn string_at(src: &str, at: usize, raw: bool) -> (String, usize) {
    let b = src.as_bytes();
    let q = b[at];
    let triple = b.get(at + 1) == Some(&q) && b.get(at + 2) == Some(&q);
    let mut i = at + if triple { 3 } else { 1 };
    let mut out = Vec::new();
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if raw {
                out.push(b[i]);
                out.push(b[i + 1]);
            } else {
                out.push(match b[i + 1] {
                    b'n' => b'\n',
                    b't' => b'\t',
                    other => other,
                });
            }
            i += 2;
            continue;
        }
        if b[i] == q && (!triple || (b.get(i + 1) == Some(&q) && b.get(i + 2) == Some(&q))) {
            i += if triple { 3 } else { 1 };
            return (String::from_utf8_lossy(&out).into_owned(), i);
        }
        if !triple && b[i] == b'\n' {
            break;
        }
        out.push(b[i]);
        i += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

/// Index of the token matching the opener at `open`.
fn closing(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split `toks` at top-level commas.
fn split_commas(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    out.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Adjacent string literals concatenated (`"a" "b"`), or `None`.
fn string(toks: &[Tok]) -> Option<String> {
    let toks = strip_parens(toks);
    if toks.is_empty() {
        return None;
    }
    let mut out = String::new();
    for t in toks {
        match t {
            Tok::Str(s) => out.push_str(s),
            _ => return None,
        }
    }
    Some(out)
}

fn strip_parens(mut toks: &[Tok]) -> &[Tok] {
    while toks.len() >= 2 && toks[0] == Tok::Punct('(') && closing(toks, 0) == Some(toks.len() - 1)
    {
        toks = &toks[1..toks.len() - 1];
    }
    toks
}

struct Module {
    toks: Vec<Tok>,
}

impl Module {
    /// The expression assigned to `name` at the top of a statement, when
    /// it is assigned exactly once and never changed in place.
    fn assignment(&self, name: &str) -> Result<&[Tok], Dynamic> {
        let t = &self.toks;
        let mut found = None;
        for i in 0..t.len() {
            if t[i] != Tok::Ident(name.to_string()) {
                continue;
            }
            let at_start = i == 0 || t[i - 1] == Tok::Newline;
            match t.get(i + 1) {
                Some(Tok::Punct('=')) if at_start => {
                    if found.is_some() {
                        return Err(Dynamic::Reassigned(name.to_string()));
                    }
                    let end = t[i + 2..]
                        .iter()
                        .position(|x| *x == Tok::Newline)
                        .map_or(t.len(), |p| i + 2 + p);
                    found = Some(&t[i + 2..end]);
                }
                Some(Tok::Op2) => return Err(Dynamic::ChangedInPlace(name.to_string())),
                Some(Tok::Punct('.')) => {
                    if let Some(Tok::Ident(m)) = t.get(i + 2)
                        && matches!(
                            m.as_str(),
                            "append" | "extend" | "insert" | "remove" | "pop" | "update" | "clear"
                        )
                    {
                        return Err(Dynamic::ChangedBy(name.to_string(), m.clone()));
                    }
                }
                _ => {}
            }
        }
        found.ok_or_else(|| Dynamic::NotLiteral(name.to_string()))
    }

    fn list(&self, toks: &[Tok], hops: u8) -> Result<Vec<String>, Dynamic> {
        // A parenthesised tuple keeps its parentheses; other parentheses go.
        let tuple = toks.len() >= 2
            && toks[0] == Tok::Punct('(')
            && closing(toks, 0) == Some(toks.len() - 1)
            && toks.contains(&Tok::Punct(','));
        let toks = if tuple { toks } else { strip_parens(toks) };
        match toks {
            [Tok::Ident(name)] if hops > 0 => self.list(self.assignment(name)?, hops - 1),
            [Tok::Punct('[' | '('), .., Tok::Punct(']' | ')')]
                if closing(toks, 0) == Some(toks.len() - 1) =>
            {
                split_commas(&toks[1..toks.len() - 1])
                    .into_iter()
                    .map(|item| string(item).ok_or(Dynamic::ComputedItem))
                    .collect()
            }
            [Tok::Str(_), ..] => match string(toks) {
                // One requirement per line, as setuptools accepts.
                Some(s) => Ok(s
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect()),
                None => Err(Dynamic::Computed),
            },
            _ => Err(Dynamic::Computed),
        }
    }

    fn dict(&self, toks: &[Tok], hops: u8) -> Result<Vec<(String, Vec<String>)>, Dynamic> {
        let toks = strip_parens(toks);
        match toks {
            [Tok::Ident(name)] if hops > 0 => self.dict(self.assignment(name)?, hops - 1),
            [Tok::Punct('{'), .., Tok::Punct('}')] if closing(toks, 0) == Some(toks.len() - 1) => {
                let mut out = Vec::new();
                for item in split_commas(&toks[1..toks.len() - 1]) {
                    let colon = item
                        .iter()
                        .position(|t| *t == Tok::Punct(':'))
                        .ok_or(Dynamic::ComputedEntry)?;
                    let key = string(&item[..colon]).ok_or(Dynamic::ComputedKey)?;
                    out.push((key, self.list(&item[colon + 1..], hops)?));
                }
                Ok(out)
            }
            _ => Err(Dynamic::Computed),
        }
    }
}

/// Read the dependency arguments of the `setup(...)` call in `setup_py`;
/// `Err` when there is no call or it takes `**` arguments or pbr.
pub fn read(setup_py: &str) -> Result<SetupArgs, Dynamic> {
    let module = Module {
        toks: tokenize(setup_py),
    };
    let t = &module.toks;
    let call = (0..t.len().saturating_sub(1))
        .rev()
        .find(|&i| {
            t[i] == Tok::Ident("setup".into())
                && t[i + 1] == Tok::Punct('(')
                && (i == 0 || t[i - 1] != Tok::Ident("def".into()))
        })
        .ok_or(Dynamic::NoCall)?;
    let end = closing(t, call + 1).ok_or(Dynamic::Unclosed)?;
    let mut args = SetupArgs {
        install_requires: Found::Absent,
        extras_require: Found::Absent,
        python_requires: Found::Absent,
    };
    for arg in split_commas(&t[call + 2..end]) {
        if arg.first() == Some(&Tok::Splat) || arg.first() == Some(&Tok::Punct('*')) {
            return Err(Dynamic::Kwargs);
        }
        let (Some(Tok::Ident(key)), Some(Tok::Punct('='))) = (arg.first(), arg.get(1)) else {
            continue;
        };
        let value = &arg[2..];
        match key.as_str() {
            "install_requires" => {
                args.install_requires = match module.list(value, 2) {
                    Ok(l) => Found::Literal(l),
                    Err(why) => Found::Dynamic(why),
                }
            }
            "extras_require" => {
                args.extras_require = match module.dict(value, 2) {
                    Ok(d) => Found::Literal(d),
                    Err(why) => Found::Dynamic(why),
                }
            }
            "python_requires" => {
                args.python_requires = match string(value) {
                    Some(s) => Found::Literal(s),
                    None => Found::Dynamic(Dynamic::ComputedPythonRequires),
                }
            }
            "pbr" => return Err(Dynamic::Pbr),
            _ => {}
        }
    }
    Ok(args)
}

/// `setup.cfg`'s `[options] install_requires`, `python_requires` and
/// `[options.extras_require]`; `Err` when a value points to a file.
pub fn read_cfg(text: &str) -> Result<SetupArgs, Dynamic> {
    let mut section = String::new();
    let mut key: Option<String> = None;
    let mut values: Vec<(String, String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let (Some(k), Some(last)) = (&key, values.last_mut())
                && &last.1 == k
            {
                last.2.push(line.trim().to_string());
            }
            continue;
        }
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            section = name.trim().to_ascii_lowercase();
            key = None;
            continue;
        }
        if let Some(at) = trimmed.find(['=', ':']) {
            let k = trimmed[..at].trim().to_string();
            let v = trimmed[at + 1..].trim();
            let mut list = Vec::new();
            if !v.is_empty() {
                list.push(v.to_string());
            }
            values.push((section.clone(), k.clone(), list));
            key = Some(k);
        }
    }
    let mut args = SetupArgs {
        install_requires: Found::Absent,
        extras_require: Found::Absent,
        python_requires: Found::Absent,
    };
    let mut extras = Vec::new();
    for (section, k, list) in values {
        if list
            .iter()
            .any(|v| v.starts_with("file:") || v.starts_with("attr:"))
        {
            if section == "options" && (k == "install_requires" || k == "python_requires")
                || section == "options.extras_require"
            {
                return Err(Dynamic::FromFile(k));
            }
            continue;
        }
        let items: Vec<String> = list
            .into_iter()
            .flat_map(|v| {
                v.split(['\n'])
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        match (section.as_str(), k.as_str()) {
            ("options", "install_requires") => args.install_requires = Found::Literal(items),
            ("options", "python_requires") => {
                args.python_requires = Found::Literal(items.join(" "));
            }
            ("options.extras_require", extra) => extras.push((extra.to_string(), items)),
            _ => {}
        }
    }
    if !extras.is_empty() {
        args.extras_require = Found::Literal(extras);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_arguments() {
        let src = r#"
from setuptools import setup
import mod  # the version comes from the package

def get_long_description():
    return open('README.rst').read()

base = [
    'requests>=2',  # HTTP
    "six" ">=1.0",
]
setup(
    name = 'demo',
    version = mod.__version__,
    long_description = get_long_description(),
    install_requires = base,
    extras_require = {'socks': ['PySocks!=1.5.7'], "test": ("pytest",)},
    python_requires=">=3.7",
)
"#;
        let args = read(src).unwrap();
        assert_eq!(
            args.install_requires,
            Found::Literal(vec!["requests>=2".into(), "six>=1.0".into()])
        );
        assert_eq!(
            args.extras_require,
            Found::Literal(vec![
                ("socks".into(), vec!["PySocks!=1.5.7".into()]),
                ("test".into(), vec!["pytest".into()])
            ])
        );
        assert_eq!(args.python_requires, Found::Literal(">=3.7".into()));
    }

    #[test]
    fn computed_values_are_dynamic() {
        let src = "from setuptools import setup\nreqs = ['a']\nif x:\n    reqs.append('b')\nsetup(name='d', install_requires=reqs)\n";
        assert!(matches!(
            read(src).unwrap().install_requires,
            Found::Dynamic(_)
        ));
        let src = "setup(name='d', install_requires=open('r.txt').read().splitlines())";
        assert!(matches!(
            read(src).unwrap().install_requires,
            Found::Dynamic(_)
        ));
        assert!(read("setup(**config)").is_err());
        assert!(read("setup(setup_requires=['pbr'], pbr=True)").is_err());
        assert!(read("print('no call')").is_err());
        // Nothing given: absent, not dynamic.
        let args =
            read("from distutils.core import setup\nsetup(name='uWSGI', py_modules=['x'])\n")
                .unwrap();
        assert_eq!(args.install_requires, Found::Absent);
    }

    #[test]
    fn setup_cfg() {
        let cfg = "[metadata]\nname = demo\n\n[options]\npython_requires = >=3.8\ninstall_requires =\n    attrs>=22\n    idna; python_version < \"3.9\"\n\n[options.extras_require]\ntest =\n    pytest\n";
        let args = read_cfg(cfg).unwrap();
        assert_eq!(
            args.install_requires,
            Found::Literal(vec![
                "attrs>=22".into(),
                "idna; python_version < \"3.9\"".into()
            ])
        );
        assert_eq!(args.python_requires, Found::Literal(">=3.8".into()));
        assert_eq!(
            args.extras_require,
            Found::Literal(vec![("test".into(), vec!["pytest".into()])])
        );
        assert!(read_cfg("[options]\ninstall_requires = file: requirements.txt\n").is_err());
    }
}
