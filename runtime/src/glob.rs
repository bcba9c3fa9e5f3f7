//! Rule-name globs for the run-time switches: `*` matches any run of characters, `?` one.

pub(crate) fn matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative wildcard match with single-star backtracking: linear in practice and
    // never recursive, so a hostile pattern from remote config cannot blow the stack.
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

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*", "anything"));
        assert!(matches("reqwest*", "reqwest-client"));
        assert!(!matches("reqwest*", "axum"));
        assert!(matches("a?c", "abc"));
        assert!(matches("*-all", "shapes-all"));
        assert!(!matches("shapes", "shapes-all"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }
}
