//! Errors of the input layer: every one names the file, and where the format
//! gives it, the line, the column and the key that was wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A problem with one of the user's input files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the problem is in (or the flag, for command-line values).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path (`packages.requests.version`), when it applies.
    pub key: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl InputError {
    /// An error about a whole file.
    pub fn file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self {
            file: file.as_ref().to_path_buf(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    /// Attach a line (1-based).
    #[must_use]
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// Attach a column (1-based).
    #[must_use]
    pub fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// Attach a position.
    #[must_use]
    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// Attach a key path.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Reading the file failed.
    pub fn io(file: impl AsRef<Path>, err: &std::io::Error) -> Self {
        Self::file(file, format!("cannot read file: {err}"))
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// 1-based (line, column) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// Largest input file read (project files, `.thoth.yaml`, locks,
/// constraints): 32 MiB.
pub const MAX_INPUT_BYTES: u64 = 32 << 20;

/// Read a regular file of at most [`MAX_INPUT_BYTES`] into a string, with
/// a path-bearing error.
pub fn read_to_string(path: &Path) -> Result<String, InputError> {
    use std::io::Read as _;
    // Only regular files: a FIFO would block and a device never end.
    let meta = std::fs::metadata(path).map_err(|e| InputError::io(path, &e))?;
    if !meta.is_file() {
        return Err(InputError::file(
            path,
            "not a regular file (a directory, device, pipe or socket cannot be an input)",
        ));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(InputError::file(
            path,
            format!(
                "{} MiB is more than an input file may be ({} MiB)",
                meta.len() >> 20,
                MAX_INPUT_BYTES >> 20
            ),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| InputError::io(path, &e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(InputError::file(
            path,
            "grew past the input size limit while read",
        ));
    }
    let mut text = String::from_utf8(bytes).map_err(|e| {
        InputError::io(
            path,
            &std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        )
    })?;
    // A UTF-8 byte-order mark, as some editors write: pip accepts it.
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    Ok(text)
}

/// Turn a `toml` deserialisation error into an [`InputError`].
pub fn from_toml_error(file: &Path, text: &str, err: &toml::de::Error) -> InputError {
    let message = err.message().trim().to_string();
    let mut out = InputError::file(file, format!("invalid TOML: {message}"));
    if let Some(span) = err.span() {
        out = out.at(Some(line_col(text, span.start)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let text = "a\nbc\ndéf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 2));
        assert_eq!(line_col(text, 8), (3, 3));
    }

    #[test]
    fn display_names_file_line_key() {
        let e = InputError::file("Pipfile", "bad")
            .at(Some((3, 7)))
            .key("packages.x");
        assert_eq!(e.to_string(), "Pipfile:3:7: key `packages.x`: bad");
    }
}
