//! The globs of rule selectors.
//!
//! `*` matches any run of characters (`::` and `/` included), `?` exactly one. Item paths
//! match at `::` boundaries from the right, so `Client::send` selects
//! `api::Client::send` and `*` selects every function.

/// Whole-text wildcard match.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
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
