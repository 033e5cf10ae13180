//! Values from a fixed set (`cache`, `sslmode`), parsed where they enter (flag, variable, file) and refused later, naming their source, only if they are the ones in force.

use serde::{Deserialize, Deserializer};

/// A value from a fixed set of spellings.
pub trait Choice: Sized + Copy {
    /// The value this text names, or the rule it breaks.
    fn parse(text: &str) -> Result<Self, &'static str>;
}

/// A choice as it entered: parsed, or the text that named nothing with the
/// rule it broke. A bad value only becomes an error if no better source
/// overrides it (a bad `cache` in the file does not matter under `--cache`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A known value.
    Valid(T),
    /// Text that is not one of the values.
    Invalid {
        /// The text as given.
        text: String,
        /// What it should have been.
        rule: &'static str,
    },
}

impl<T: Choice> Parsed<T> {
    /// Parses `text`.
    pub fn new(text: &str) -> Self {
        match T::parse(text) {
            Ok(v) => Parsed::Valid(v),
            Err(rule) => Parsed::Invalid {
                text: text.to_string(),
                rule,
            },
        }
    }
}

/// A clap value parser that never fails: the value is refused later, with
/// the same message whichever source it came from.
pub fn parse_flag<T: Choice>(text: &str) -> Result<Parsed<T>, std::convert::Infallible> {
    Ok(Parsed::new(text))
}

impl<'de, T: Choice> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A string that names nothing is kept for the resolver's message; a
        // value of another type is a schema error with its line and column.
        String::deserialize(d).map(|s| Parsed::new(&s))
    }
}
