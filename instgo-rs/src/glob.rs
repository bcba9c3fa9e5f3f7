//! The globs of rule selectors.
//!
//! `*` matches any run of characters (`::` and `/` included), `?` exactly one. Item paths
//! match at `::` boundaries from the right, so `Client::send` selects
//! `api::Client::send` and `*` selects every function.

// The same matcher the runtime uses for its switches, compiled into the tool from the
// runtime's file (the runtime must stay standalone, so the sharing goes this way).
#[path = "../../runtime/src/glob.rs"]
mod wildcard;

/// Whole-text wildcard match.
pub fn matches(pattern: &str, text: &str) -> bool {
    wildcard::matches(pattern, text)
}

/// Whether `text` has wildcards, i.e. stands for many names rather than one.
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// Matches a Rust path (`a::b::c`) against the whole path or any `::`-aligned suffix.
pub fn matches_path(pattern: &str, path: &str) -> bool {
    if matches(pattern, path) {
        return true;
    }
    let mut rest = path;
    while let Some(i) = rest.find("::") {
        rest = &rest[i + 2..];
        if matches(pattern, rest) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_suffixes() {
        assert!(matches_path("*", "a::b::c"));
        assert!(matches_path("Client::send", "api::Client::send"));
        assert!(!matches_path("Client::send", "api::MyClient::send"));
        assert!(matches_path("service::*", "service::Client::send"));
        assert!(matches_path("service::*", "app::service::run"));
        assert!(!matches_path("service::*", "services::run"));
        assert!(matches_path("area", "geometry::Circle::area"));
        assert!(!matches_path("are", "geometry::Circle::area"));
        assert!(matches_path("get_*", "db::get_user"));
    }

    #[test]
    fn plain_globs() {
        assert!(matches("src/api/*", "src/api/v1/users.rs"));
        assert!(matches("?", "x"));
        assert!(!matches("?", ""));
        assert!(matches("a*b*c", "aXbYc"));
        assert!(!matches("a*b*c", "aXbY"));
    }
}
