//! The ordered header list and the typed views over it.
//!
//! Headers are stored as (name, value) strings in arrival order, exactly as parsed (after
//! unfolding), and decoded lazily by typed accessors on [`Headers`]. Lookup is
//! case-insensitive and treats compact forms (RFC 3261 §7.3.3 and later RFCs) as their long
//! names, so `v:` is found by `get("Via")` and vice versa.

mod cseq;
mod name_addr;
pub(crate) mod typed;
mod via;

pub use cseq::CSeq;
pub use name_addr::NameAddr;
pub use typed::HeaderError;
pub use via::Via;

/// One header line (unfolded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Name as written (may be a compact form).
    pub name: String,
    /// Value with surrounding whitespace removed.
    pub value: String,
}

/// Ordered header list with case-insensitive, compact-form-aware lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Header>,
}

/// Maps a compact header name to its long form (lowercase).
fn expand_compact(c: u8) -> Option<&'static str> {
    Some(match c.to_ascii_lowercase() {
        b'i' => "call-id",
        b'f' => "from",
        b't' => "to",
        b'v' => "via",
        b'm' => "contact",
        b'l' => "content-length",
        b'c' => "content-type",
        b'k' => "supported",
        b's' => "subject",
        b'e' => "content-encoding",
        b'o' => "event",
        b'r' => "refer-to",
        b'u' => "allow-events",
        b'x' => "session-expires",
        b'b' => "referred-by",
        b'd' => "request-disposition",
        b'y' => "identity",
        _ => return None,
    })
}

/// True when header names `a` and `b` denote the same header.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    fn long(n: &str) -> Option<&'static str> {
        match n.as_bytes() {
            [c] => expand_compact(*c),
            _ => None,
        }
    }
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    match (long(a), long(b)) {
        (Some(x), None) => x.eq_ignore_ascii_case(b),
        (None, Some(y)) => y.eq_ignore_ascii_case(a),
        _ => false,
    }
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Inserts a header before all others (used for the new top Via).
    pub fn push_front(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.insert(
            0,
            Header {
                name: name.into(),
                value: value.into(),
            },
        );
    }

    /// Replaces every `name` header by one with `value`, at the position of the first one
    /// (or at the end when there was none).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter().position(|h| same_name(&h.name, name)) {
            Some(pos) => {
                if let Some(h) = self.entries.get_mut(pos) {
                    h.value = value;
                }
                let mut i = 0;
                self.entries.retain(|h| {
                    let keep = i <= pos || !same_name(&h.name, name);
                    i += 1;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every `name` header; returns how many were removed.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|h| !same_name(&h.name, name));
        before - self.entries.len()
    }

    /// Value of the first `name` header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Values of every `name` header, in order (each line as one value, not split at commas).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Mutable access to the first `name` header's value.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut String> {
        self.entries
            .iter_mut()
            .find(|h| same_name(&h.name, name))
            .map(|h| &mut h.value)
    }

    /// Appends folded continuation text to the last header (parser use).
    pub(crate) fn append_to_last(&mut self, text: &str) -> Option<usize> {
        let last = self.entries.last_mut()?;
        if !last.value.is_empty() {
            last.value.push(' ');
        }
        last.value.push_str(text);
        Some(last.name.len() + 2 + last.value.len())
    }

    /// True when at least one `name` header exists.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// All headers in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.entries.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_case_insensitive_lookup() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a");
        h.push("VIA", "SIP/2.0/UDP b");
        h.push("i", "abc");
        h.push("X-Custom", "1");
        assert_eq!(
            h.get_all("Via").collect::<Vec<_>>(),
            ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
        );
        assert_eq!(h.get("call-id"), Some("abc"));
        assert_eq!(h.get("I"), Some("abc"));
        assert_eq!(h.get("x-custom"), Some("1"));
        assert!(!h.contains("t"));
        assert!(!same_name("i", "t"));
        assert!(same_name("l", "Content-Length"));
    }

    #[test]
    fn set_replaces_in_place_and_remove() {
        let mut h = Headers::new();
        h.push("A", "1");
        h.push("Content-Length", "9");
        h.push("B", "2");
        h.push("l", "7");
        h.set("content-length", "0");
        let names: Vec<_> = h
            .iter()
            .map(|x| (x.name.as_str(), x.value.as_str()))
            .collect();
        assert_eq!(names, [("A", "1"), ("Content-Length", "0"), ("B", "2")]);
        h.push_front("Via", "x");
        assert_eq!(h.iter().next().map(|x| x.name.as_str()), Some("Via"));
        assert_eq!(h.remove("via"), 1);
        h.set("New", "v");
        assert_eq!(h.get("new"), Some("v"));
        assert_eq!(h.len(), 4);
    }
}
