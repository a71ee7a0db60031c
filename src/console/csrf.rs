//! CSRF: every form of a session carries the session's token in a hidden `csrf` field and
//! every POST is refused unless it matches. The SameSite=Strict cookie already keeps other
//! sites' requests unauthenticated; the token also stops a same-site page (another service on
//! a sibling host) from posting as the operator.

use super::session::Session;

pub const FIELD: &str = "csrf";

/// Constant time: the comparison must not tell how much of a guess was right.
pub fn valid(session: &Session, given: Option<&str>) -> bool {
    given.is_some_and(|token| {
        constant_time_eq::constant_time_eq(token.as_bytes(), session.csrf.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::super::session::Sessions;
    use super::*;

    #[test]
    fn only_the_sessions_own_token_passes() {
        let sessions = Sessions::new(false);
        let one = sessions.start("甲".into());
        let other = sessions.start("乙".into());
        assert!(valid(&one, Some(&one.csrf)));
        assert!(!valid(&one, Some(&other.csrf)));
        assert!(!valid(&one, Some("")));
        assert!(!valid(&one, None));
    }
}
