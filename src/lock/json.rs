//! JSON written the way Python's `json` module writes it by default:
//! keys sorted (maps are `BTreeMap`s), non-ASCII escaped as `\uXXXX`
//! (surrogate pairs above U+FFFF), either compact (`,` and `:`) or indented
//! by four spaces (`,` and `: `).

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter, Serializer};

/// A formatter that escapes every non-ASCII character.
struct Ascii<F>(F);

impl<F: Formatter> Formatter for Ascii<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // Everything else is delegated unchanged.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

fn render<T: Serialize, F: Formatter>(value: &T, formatter: F) -> String {
    let mut out = Vec::new();
    let mut ser = Serializer::with_formatter(&mut out, Ascii(formatter));
    value
        .serialize(&mut ser)
        .expect("serialising JSON values into memory cannot fail");
    String::from_utf8(out).expect("the formatter writes ASCII only")
}

/// `json.dumps(value, sort_keys=True, separators=(",", ":"))`.
pub fn compact<T: Serialize>(value: &T) -> String {
    render(value, CompactFormatter)
}

/// `json.dumps(value, sort_keys=True, indent=4, separators=(",", ": "))`.
pub fn pretty<T: Serialize>(value: &T) -> String {
    render(value, PrettyFormatter::with_indent(b"    "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_like_python() {
        // json.dumps({"b": "café", "a": "𝄞"}, sort_keys=True, separators=(",", ":"))
        let v = json!({"b": "café", "a": "𝄞"});
        assert_eq!(compact(&v), r#"{"a":"\ud834\udd1e","b":"caf\u00e9"}"#);
        assert_eq!(
            pretty(&json!({"x": [1, 2]})),
            "{\n    \"x\": [\n        1,\n        2\n    ]\n}"
        );
    }
}
