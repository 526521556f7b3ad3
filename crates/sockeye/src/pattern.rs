//! Namespace path patterns such as `/room-{id}` or `/org/{org}/chat`.
//!
//! A `{name}` placeholder matches one or more characters other than `/`; everything else must
//! match literally. Captured values are handed to the connect step as [`NsParams`].

use std::collections::HashMap;

/// A compiled namespace pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NsPattern {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Param(String),
}

/// Why a namespace pattern was refused at registration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error("namespace pattern {0:?} has an unbalanced brace: write placeholders as {{name}}")]
    Unbalanced(String),
    /// Two placeholders follow each other, so the split between them would be ambiguous.
    #[error(
        "namespace pattern {0:?} has two adjacent placeholders: separate them with literal text"
    )]
    Adjacent(String),
    /// `{}` with no name.
    #[error("namespace pattern {0:?} has an empty placeholder: name it, e.g. {{id}}")]
    EmptyName(String),
    /// Patterns start with `/` like namespace names.
    #[error("namespace pattern {0:?} must start with '/'")]
    NoLeadingSlash(String),
}

/// The values captured by a dynamic namespace's pattern, by placeholder name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsParams(HashMap<String, String>);

impl NsParams {
    /// The value captured for placeholder `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every captured (name, value) pair, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl NsPattern {
    /// Compiles `source`.
    pub(crate) fn parse(source: &str) -> Result<NsPattern, PatternError> {
        if !source.starts_with('/') {
            return Err(PatternError::NoLeadingSlash(source.to_owned()));
        }
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
                Some(i) => {
                    let (lit, tail) = rest.split_at(i);
                    if tail.starts_with('}') {
                        return Err(PatternError::Unbalanced(source.to_owned()));
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Literal(lit.to_owned()));
                    }
                    let inner = tail.get(1..).unwrap_or("");
                    let Some(end) = inner.find('}') else {
                        return Err(PatternError::Unbalanced(source.to_owned()));
                    };
                    let name = inner.get(..end).unwrap_or("");
                    if name.is_empty() {
                        return Err(PatternError::EmptyName(source.to_owned()));
                    }
                    if name.contains('{') {
                        return Err(PatternError::Unbalanced(source.to_owned()));
                    }
                    if matches!(parts.last(), Some(Part::Param(_))) {
                        return Err(PatternError::Adjacent(source.to_owned()));
                    }
                    parts.push(Part::Param(name.to_owned()));
                    rest = inner.get(end + 1..).unwrap_or("");
                }
            }
        }
        Ok(NsPattern {
            parts,
            source: source.to_owned(),
        })
    }

    /// The pattern as written.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Matches a whole namespace name, returning the captures.
    pub(crate) fn matches(&self, name: &str) -> Option<NsParams> {
        let mut params = HashMap::new();
        let mut rest = name;
        let mut parts = self.parts.iter().peekable();
        while let Some(part) = parts.next() {
            match part {
                Part::Literal(lit) => rest = rest.strip_prefix(lit.as_str())?,
                Part::Param(pname) => {
                    // A value ends at the next '/' or where the next literal begins (the
                    // leftmost occurrence within the segment); never empty.
                    let segment_end = rest.find('/').unwrap_or(rest.len());
                    let end = match parts.peek() {
                        Some(Part::Literal(next)) => {
                            let segment = rest.get(..segment_end)?;
                            let first = segment.chars().next()?.len_utf8();
                            match segment.get(first..).and_then(|s| s.find(next.as_str())) {
                                Some(i) => i + first,
                                None if next.starts_with('/') => segment_end,
                                None => return None,
                            }
                        }
                        _ => segment_end,
                    };
                    if end == 0 {
                        return None;
                    }
                    let (value, tail) = rest.split_at(end);
                    params.insert(pname.clone(), value.to_owned());
                    rest = tail;
                }
            }
        }
        rest.is_empty().then_some(NsParams(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_pattern_matches_exactly() {
        let p = NsPattern::parse("/chat").unwrap();
        assert!(p.matches("/chat").is_some());
        assert!(p.matches("/chat2").is_none());
        assert!(p.matches("/cha").is_none());
    }

    #[test]
    fn placeholder_inside_a_segment() {
        let p = NsPattern::parse("/room-{id}").unwrap();
        let m = p.matches("/room-42").unwrap();
        assert_eq!(m.get("id"), Some("42"));
        assert!(
            p.matches("/room-").is_none(),
            "a placeholder is never empty"
        );
        assert!(
            p.matches("/room-4/2").is_none(),
            "a placeholder stops at '/'"
        );
        assert!(p.matches("/other-4").is_none());
        assert_eq!(p.matches("/room-ü").unwrap().get("id"), Some("ü"));
    }

    #[test]
    fn several_placeholders_and_suffixes() {
        let p = NsPattern::parse("/org/{org}/chat-{room}.live").unwrap();
        let m = p.matches("/org/acme/chat-main.live").unwrap();
        assert_eq!(m.get("org"), Some("acme"));
        assert_eq!(m.get("room"), Some("main"));
        assert!(p.matches("/org/acme/chat-main.dead").is_none());
        assert!(p.matches("/org//chat-main.live").is_none());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(matches!(
            NsPattern::parse("/a{b"),
            Err(PatternError::Unbalanced(_))
        ));
        assert!(matches!(
            NsPattern::parse("/a}b"),
            Err(PatternError::Unbalanced(_))
        ));
        assert!(matches!(
            NsPattern::parse("/{a}{b}"),
            Err(PatternError::Adjacent(_))
        ));
        assert!(matches!(
            NsPattern::parse("/{}"),
            Err(PatternError::EmptyName(_))
        ));
        assert!(matches!(
            NsPattern::parse("room"),
            Err(PatternError::NoLeadingSlash(_))
        ));
    }
}
