//! A budget on what YAML aliases may expand to, checked on the text before
//! any parser sees it.
//!
//! A YAML parser that builds values copies an anchored node for every alias
//! (`*a`) that names it, so a 1 MiB anchor referenced 3,000 times is 3 GiB
//! of values from a 1 MiB file; nested anchors (billion laughs) grow
//! exponentially. The check estimates the expanded size from the text: an
//! anchor's node spans from the anchor to the next line indented no
//! deeper than the anchor's own line (exact for block YAML, an
//! over-estimate for flow style); its expanded size adds what the aliases
//! inside it expand to. Files without aliases cost one scan.

/// Largest expanded size accepted: 64 MiB (real inputs are far below; the
/// largest prescription files of the corpus are about 1 MiB, without
/// aliases).
pub const MAX_EXPANDED_BYTES: u128 = 64 << 20;

/// Most anchors accepted in one file.
pub const MAX_ANCHORS: usize = 10_000;

struct Token {
    at: usize,
    name: String,
}

fn name_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}')
}

/// Anchors and aliases of `text` (outside comments and quoted scalars).
fn tokens(text: &str) -> (Vec<Token>, Vec<Token>) {
    let mut anchors = Vec::new();
    let mut aliases = Vec::new();
    let bytes: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    let mut prev = '\n';
    while i < bytes.len() {
        let (at, c) = bytes[i];
        let token_start = prev.is_whitespace() || matches!(prev, '[' | '{' | ',');
        match c {
            '#' if prev.is_whitespace() => {
                while i < bytes.len() && bytes[i].1 != '\n' {
                    i += 1;
                }
                prev = '\n';
                continue;
            }
            '"' | '\'' if token_start || matches!(prev, ':') => {
                let quote = c;
                i += 1;
                while i < bytes.len() {
                    let d = bytes[i].1;
                    if quote == '"' && d == '\\' {
                        i += 2;
                        continue;
                    }
                    if d == quote {
                        if quote == '\'' && bytes.get(i + 1).is_some_and(|(_, n)| *n == '\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                prev = quote;
                i += 1;
                continue;
            }
            '&' | '*' if token_start => {
                let mut j = i + 1;
                let mut name = String::new();
                while j < bytes.len() && name_char(bytes[j].1) {
                    name.push(bytes[j].1);
                    j += 1;
                }
                if !name.is_empty() {
                    let t = Token { at, name };
                    if c == '&' {
                        anchors.push(t);
                    } else {
                        aliases.push(t);
                    }
                }
                prev = bytes[j.saturating_sub(1)].1;
                i = j;
                continue;
            }
            _ => {}
        }
        prev = c;
        i += 1;
    }
    (anchors, aliases)
}

/// Byte offset where the node anchored at `at` ends: the start of the next
/// non-blank, non-comment line indented no deeper than the anchor's line.
fn span_end(text: &str, at: usize) -> usize {
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    let indent = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let own = indent(&text[line_start..]);
    let mut pos = text[at..].find('\n').map_or(text.len(), |p| at + p + 1);
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |p| pos + p + 1);
        let line = &text[pos..end];
        let body = line.trim();
        if !body.is_empty() && !body.starts_with('#') && indent(line) <= own {
            return pos;
        }
        pos = end;
    }
    text.len()
}

/// Why a YAML text is refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasBomb {
    /// Too many anchors to follow.
    #[error("more than {MAX_ANCHORS} anchors; refused before parsing")]
    Anchors,
    /// Its aliases would expand it to about this many MiB.
    #[error(
        "its aliases would expand it to about {0} MiB (limit {limit} MiB); refused before parsing",
        limit = MAX_EXPANDED_BYTES >> 20
    )]
    Expands(u128),
}

/// Check that `text`'s aliases cannot expand past [`MAX_EXPANDED_BYTES`];
/// the error says by how much they would.
pub fn check(text: &str) -> Result<(), AliasBomb> {
    if !text.contains('*') {
        return Ok(());
    }
    let (anchors, aliases) = tokens(text);
    if aliases.is_empty() {
        return Ok(());
    }
    if anchors.len() > MAX_ANCHORS {
        return Err(AliasBomb::Anchors);
    }
    // Anchors in order; each alias names the latest anchor of its name
    // defined before it.
    let mut size: Vec<u128> = Vec::with_capacity(anchors.len());
    let spans: Vec<(usize, usize)> = anchors
        .iter()
        .map(|a| (a.at, span_end(text, a.at)))
        .collect();
    let target = |alias: &Token, before: usize| -> Option<usize> {
        anchors[..before]
            .iter()
            .rposition(|a| a.name == alias.name && a.at < alias.at)
    };
    for (k, &(start, end)) in spans.iter().enumerate() {
        let mut total = (end - start) as u128;
        for alias in aliases.iter().filter(|a| a.at > start && a.at < end) {
            if let Some(t) = target(alias, k) {
                total = total.saturating_add(size[t]);
            }
        }
        size.push(total.min(u128::MAX / 4));
    }
    let mut expanded = text.len() as u128;
    for alias in &aliases {
        if let Some(t) = target(alias, anchors.len()) {
            expanded = expanded.saturating_add(size[t]);
        }
    }
    if expanded > MAX_EXPANDED_BYTES {
        return Err(AliasBomb::Expands(expanded >> 20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_aliases_pass_and_bombs_are_refused() {
        let ok = "defaults: &d\n  a: 1\n  b: [x, y]\nfirst:\n  <<: *d\nsecond: *d\nstar: '*not an alias'\nmath: 2 * 3\n";
        assert!(check(ok).is_ok());
        assert!(check("a: 1\nb: 2\n").is_ok());
        // One large anchor referenced many times.
        let big = format!(
            "big: &a \"{}\"\nuse:\n{}",
            "x".repeat(1 << 20),
            (0..100)
                .map(|i| format!("  k{i}: *a\n"))
                .collect::<String>()
        );
        let e = check(&big).unwrap_err();
        assert!(e.to_string().contains("MiB"), "{e}");
        // Billion laughs, block style.
        let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs: Vec<String> = (0..9).map(|_| format!("*a{}", i - 1)).collect();
            laughs.push_str(&format!("a{i}: &a{i} [{}]\n", refs.join(", ")));
        }
        assert!(check(&laughs).is_err());
        // Flow style on one line.
        let flow = "[&a [x, x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d], &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e], &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]]";
        assert!(check(flow).is_err());
    }
}
