//! A connection URL that may carry a password (`postgres://app:pw@db/pay`,
//! `redis://:pw@cache:6379`). Settings are printed with `{:?}` in places nobody reviews for
//! secrets (panics, `tracing` fields, test failures), so the password is redacted in both
//! `Debug` and `Display`; the real text is reached only through [`SecretUrl::expose`], where a
//! connection is opened.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The URL with its password, for the one call that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***` (a URL that does not parse is hidden
    /// whole: it might be a password pasted in the wrong place).
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // Only fails for URLs that cannot have a password, which this one has.
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            Err(_) => "[unparsable URL]".to_owned(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> SecretUrl {
        SecretUrl(url)
    }
}

impl PartialEq<&str> for SecretUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        for (raw, shown) in [
            (
                "postgres://app:hunter2@db:5432/pay",
                "postgres://app:***@db:5432/pay",
            ),
            ("redis://:hunter2@cache:6379", "redis://:***@cache:6379"),
            ("sqlite://data/pay.db", "sqlite://data/pay.db"),
            ("postgres://app@db/pay", "postgres://app@db/pay"),
        ] {
            let url = SecretUrl::new(raw);
            assert_eq!(url.to_string(), shown);
            assert_eq!(format!("{url:?}"), format!("{shown:?}"));
            assert_eq!(url.expose(), raw);
        }
        let garbage = SecretUrl::new("hunter2 not a url");
        assert!(!format!("{garbage:?}{garbage}").contains("hunter2"));
    }
}
