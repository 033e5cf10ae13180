//! The one error type: every failure, its message and its exit code.

use std::path::PathBuf;

/// Everything that can stop a command. All the wording lives in `Display`,
/// and `exit_code` is the only place that maps failures to codes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or environment value broke one of the input rules.
    #[error("invalid {input} {value}: {rule}")]
    InvalidInput {
        /// The flag or variable, as the user wrote it (`--db-user`).
        input: String,
        /// The offending value, already quoted and shortened for display.
        value: String,
        /// The rule it broke, in plain words.
        rule: String,
    },

    /// A required input is missing, or inputs contradict each other.
    #[error("{0}")]
    Usage(String),

    /// Another process held the refresh lock for longer than `--lock-timeout`.
    #[error(
        "timed out after {seconds} s waiting for the lock {path} held by another redshift-creds \
         process; raise --lock-timeout, or remove the lock file if no other process is running"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        seconds: u64,
    },

    /// The user asked for a cache store that cannot be used here.
    #[error("the {mode} cache cannot be used: {reason}; use {}", other_modes(mode))]
    CacheUnavailable {
        /// The store the user demanded (`keyring`, `file`).
        mode: &'static str,
        /// Why it is unusable.
        reason: String,
    },

    /// The AWS API call failed.
    #[error("{api} failed for {target}: {reason}{hint}", hint = hint_suffix(.hint))]
    Aws {
        /// The API operation (`GetClusterCredentials`).
        api: &'static str,
        /// Which cluster and user, for the message.
        target: String,
        /// What kind of failure, set once where it is classified: every
        /// decision (exit code, the proxy's SQLSTATE, a hint) is made on this,
        /// never on the wording of `reason`.
        kind: AwsFailure,
        /// What went wrong.
        reason: String,
        /// What to do about it, when we know.
        hint: Option<String>,
    },

    /// Writing the output failed (a closed pipe, a full disk).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),

    /// A file we had to read or write could not be.
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        /// What we were doing ("write the pgpass file").
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// `redshift-creds` could not start `redshift-creds-aws`.
    #[error(
        "cannot run {} ({source}); it must sit beside redshift-creds: reinstall both (install/install.sh)",
        path.display()
    )]
    Helper {
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `proxy` could not start or serve (a taken port, a socket directory that is not private).
    #[error("{0}")]
    Proxy(String),

    /// `exec` could not start the command.
    #[error("cannot run {program}: {source}")]
    Exec {
        /// The command as given.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The kinds of AWS failure, as [`Error::Aws`] carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFailure {
    /// The principal may not make this call (AccessDenied and kin).
    AccessDenied,
    /// AWS refused the credentials themselves: expired, unknown or badly signed.
    CredentialsRejected,
    /// No usable AWS credentials could be loaded.
    NoCredentials,
    /// AWS is throttling requests.
    Throttled,
    /// The cluster or workgroup does not exist.
    NotFound,
    /// It exists but cannot serve yet: not available, no endpoint yet.
    Unavailable,
    /// The API did not answer within `--api-timeout`.
    Timeout,
    /// The API answered something that could not be read or was refused
    /// (a missing field, a value out of range); nothing of it was cached.
    BadAnswer,
    /// The request could not be sent (DNS, connection, proxy), or the
    /// runtime to send it could not start.
    NotSent,
    /// An error code we give no special meaning.
    Other,
}

impl AwsFailure {
    /// Every kind, for tests that must cover each one.
    pub const ALL: [AwsFailure; 10] = [
        AwsFailure::AccessDenied,
        AwsFailure::CredentialsRejected,
        AwsFailure::NoCredentials,
        AwsFailure::Throttled,
        AwsFailure::NotFound,
        AwsFailure::Unavailable,
        AwsFailure::Timeout,
        AwsFailure::BadAnswer,
        AwsFailure::NotSent,
        AwsFailure::Other,
    ];
}

fn other_modes(mode: &str) -> &'static str {
    match mode {
        "keyring" => "--cache auto, file or none",
        _ => "--cache auto, keyring or none, or set REDSHIFT_CREDS_CACHE_DIR",
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| format!("; {h}"))
        .unwrap_or_default()
}

impl Error {
    /// The process exit code for this error: 2 usage or config, 3 lock timeout,
    /// 4 an unusable cache the user demanded, 127 or 126 when `exec` cannot
    /// find or start its command (as shells do), 1 AWS and anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidInput { .. } | Error::Usage(_) => 2,
            Error::LockTimeout { .. } => 3,
            Error::CacheUnavailable { .. } => 4,
            Error::Aws { .. }
            | Error::Output(_)
            | Error::File { .. }
            | Error::Helper { .. }
            | Error::Proxy(_) => 1,
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
        }
    }

    /// Builds an [`Error::InvalidInput`], quoting and shortening the value so
    /// that control characters and very long inputs cannot garble the message.
    pub fn invalid(input: &str, value: &str, rule: impl Into<String>) -> Self {
        Error::InvalidInput {
            input: input.to_string(),
            value: display_value(value),
            rule: rule.into(),
        }
    }
}

/// Quotes a user-supplied value for an error message: escaped, and cut at 64 characters.
pub fn display_value(value: &str) -> String {
    const MAX: usize = 64;
    let mut shown: String = value
        .chars()
        .take(MAX)
        .collect::<String>()
        .escape_debug()
        .collect();
    if value.chars().count() > MAX {
        shown.push_str("...");
    }
    format!("\"{shown}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_names_the_flag_the_value_and_the_rule() {
        let e = Error::invalid("--db-user", "bad:user", "must not contain ':' or '/'");
        assert_eq!(
            e.to_string(),
            "invalid --db-user \"bad:user\": must not contain ':' or '/'"
        );
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn control_characters_and_long_values_are_escaped_and_cut() {
        assert_eq!(display_value("a\nb\0c"), "\"a\\nb\\0c\"");
        let long = "x".repeat(500);
        let shown = display_value(&long);
        assert!(shown.len() < 80, "{shown}");
        assert!(shown.ends_with("...\""));
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let lock = Error::LockTimeout {
            path: "/x.lock".into(),
            seconds: 3,
        };
        assert_eq!(lock.exit_code(), 3);
        let cache = Error::CacheUnavailable {
            mode: "keyring",
            reason: "no keyring".into(),
        };
        assert_eq!(cache.exit_code(), 4);
        let aws = Error::Aws {
            api: "GetClusterCredentials",
            target: "cluster \"c\", user \"u\"".into(),
            kind: AwsFailure::NotFound,
            reason: "cluster not found".into(),
            hint: Some("check --cluster-identifier and --region".into()),
        };
        assert_eq!(aws.exit_code(), 1);
        assert_eq!(
            aws.to_string(),
            "GetClusterCredentials failed for cluster \"c\", user \"u\": cluster not found; \
             check --cluster-identifier and --region"
        );
    }

    #[test]
    fn every_aws_failure_exits_1_whatever_its_wording() {
        // A new kind must be listed in ALL: this match has no wildcard.
        for kind in AwsFailure::ALL {
            match kind {
                AwsFailure::AccessDenied
                | AwsFailure::CredentialsRejected
                | AwsFailure::NoCredentials
                | AwsFailure::Throttled
                | AwsFailure::NotFound
                | AwsFailure::Unavailable
                | AwsFailure::Timeout
                | AwsFailure::BadAnswer
                | AwsFailure::NotSent
                | AwsFailure::Other => {}
            }
            for reason in [
                "access denied",
                "",
                "cannot write the output",
                "invalid --x",
            ] {
                let e = Error::Aws {
                    api: "GetCredentials",
                    target: "workgroup \"w\"".into(),
                    kind,
                    reason: reason.into(),
                    hint: None,
                };
                assert_eq!(e.exit_code(), 1, "{kind:?} {reason:?}");
            }
        }
        let distinct: std::collections::HashSet<String> =
            AwsFailure::ALL.iter().map(|k| format!("{k:?}")).collect();
        assert_eq!(distinct.len(), AwsFailure::ALL.len());
    }
}
