//! Small lexical helpers shared by the header parsers (RFC 3261 §25.1 character classes and
//! quote/bracket-aware splitting). Nothing here allocates more than the pieces it returns.

/// RFC 3261 `token` character.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// True when `s` is a non-empty RFC 3261 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Splits `s` at every `sep` that is outside a quoted string and outside `<...>`.
/// Pieces are trimmed; empty pieces are kept so callers can reject them.
pub(crate) fn split_outside(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == sep && !in_angle {
            out.push(s.get(start..i).unwrap_or("").trim());
            start = i + 1;
        }
        i += 1;
    }
    out.push(s.get(start..).unwrap_or("").trim());
    out
}

/// Splits a comma-separated header value into its elements (RFC 3261 §7.3.1), skipping
/// empty elements (which RFC 7230-style lists allow and some stacks send).
pub(crate) fn split_list(s: &str) -> Vec<&str> {
    split_outside(s, b',')
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect()
}

/// Removes surrounding double quotes and backslash escapes from a quoted string; returns the
/// input unchanged when it is not quoted. `None` when the quotes are unbalanced.
pub(crate) fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    let Some(inner) = s.strip_prefix('"') else {
        return Some(s.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Quotes `s` as an RFC 3261 quoted-string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Index of the first unquoted occurrence of `needle` in `s`.
pub(crate) fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Keeps `s` safe to put inside a Warning header's quoted text: printable ASCII only, no
/// quotes or backslashes, at most `max` characters.
pub(crate) fn sanitize_warning(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        assert_eq!(
            split_list(r#""a,b" <sip:x;y,z>;p=1, <sip:q>,,"#),
            vec![r#""a,b" <sip:x;y,z>;p=1"#, "<sip:q>"]
        );
        assert_eq!(
            split_outside("a;b=\"c;d\";e", b';'),
            vec!["a", "b=\"c;d\"", "e"]
        );
    }

    #[test]
    fn unquote_handles_escapes_and_rejects_unbalanced() {
        assert_eq!(unquote(r#""a\"b""#).as_deref(), Some("a\"b"));
        assert_eq!(unquote("plain").as_deref(), Some("plain"));
        assert_eq!(unquote("\"open"), None);
        assert_eq!(unquote("\"a\"b\""), None);
        assert_eq!(quote("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn warning_text_is_sanitized() {
        assert_eq!(sanitize_warning("bad \"x\"\r\n", 100), "bad ?x???");
        assert_eq!(sanitize_warning("abcdef", 3), "abc");
    }
}
