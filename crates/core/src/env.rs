//! The environment reader: every read of an environment variable in the core goes through here (a leaf: it imports nothing from the crate).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The environment, as a lookup, so tests can supply their own.
pub trait Env {
    /// The raw value of a variable, if it is set (Unicode or not).
    fn var_os(&self, name: &str) -> Option<OsString>;

    /// The value of a variable, if it is set to valid Unicode. A value that
    /// is not Unicode reads as unset here; use [`text`] to refuse it instead.
    fn var(&self, name: &str) -> Option<String> {
        self.var_os(name).and_then(|v| v.into_string().ok())
    }
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

/// A variable that must hold text holds bytes that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUnicode {
    /// The variable.
    pub name: &'static str,
}

impl fmt::Display for NotUnicode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}: the value is not valid UTF-8; fix or unset it",
            self.name
        )
    }
}

impl std::error::Error for NotUnicode {}

/// A text variable: `Ok(None)` when unset or empty, an error when it is set
/// to something that is not UTF-8 (never silently read as unset).
pub fn text(env: &dyn Env, name: &'static str) -> Result<Option<String>, NotUnicode> {
    match env.var_os(name) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|_| NotUnicode { name }),
    }
}

/// The first of these text variables that is set and not empty, with its
/// name. A variable that is not UTF-8 is an error, even when a later one is set.
pub fn first_text(
    env: &dyn Env,
    names: &[&'static str],
) -> Result<Option<(String, &'static str)>, NotUnicode> {
    for &name in names {
        if let Some(v) = text(env, name)? {
            return Ok(Some((v, name)));
        }
    }
    Ok(None)
}

/// A path variable: `None` when unset or empty. Paths need not be UTF-8 (on
/// Unix any bytes but NUL name a file), so the value is taken as given.
pub fn path(env: &dyn Env, name: &str) -> Option<PathBuf> {
    env.var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<&'static str, OsString>);

    impl Env for Fake {
        fn var_os(&self, name: &str) -> Option<OsString> {
            self.0.get(name).cloned()
        }
    }

    #[cfg(unix)]
    fn not_utf8() -> OsString {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(vec![b'a', 0xff, b'b'])
    }

    #[cfg(unix)]
    #[test]
    fn text_refuses_bytes_that_are_not_utf8_and_paths_take_them() {
        let env = Fake(HashMap::from([
            ("BAD", not_utf8()),
            ("EMPTY", OsString::new()),
            ("GOOD", OsString::from("x")),
        ]));
        let err = text(&env, "BAD").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid BAD: the value is not valid UTF-8; fix or unset it"
        );
        assert_eq!(text(&env, "EMPTY"), Ok(None));
        assert_eq!(text(&env, "UNSET"), Ok(None));
        assert_eq!(text(&env, "GOOD"), Ok(Some("x".to_string())));
        assert_eq!(env.var("BAD"), None);
        assert_eq!(path(&env, "BAD"), Some(PathBuf::from(not_utf8())));
        assert_eq!(path(&env, "EMPTY"), None);
        assert_eq!(
            first_text(&env, &["EMPTY", "GOOD"]),
            Ok(Some(("x".to_string(), "GOOD")))
        );
        assert_eq!(
            first_text(&env, &["BAD", "GOOD"]),
            Err(NotUnicode { name: "BAD" })
        );
    }
}
