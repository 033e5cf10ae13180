//! The pgpass file: libpq's escaping, replacing one connection's line, and an atomic 0600 write.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One pgpass line's fields, unescaped. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub host: &'a str,
    pub port: &'a str,
    pub database: &'a str,
    pub user: &'a str,
    pub password: &'a str,
}

impl std::fmt::Debug for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &format_args!("***"))
            .finish()
    }
}

/// Escapes one field as libpq reads it: `\` and `:` get a backslash.
pub fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len() + 4);
    for c in field.chars() {
        if c == '\\' || c == ':' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats a line, without its newline.
pub fn format_line(l: &Line<'_>) -> String {
    [l.host, l.port, l.database, l.user, l.password]
        .map(escape)
        .join(":")
}

/// Splits a line into its first four fields (host, port, database, user),
/// unescaped, the way libpq reads them; `None` for comments, blank lines and
/// lines with fewer than five fields.
pub fn parse_key(line: &str) -> Option<[String; 4]> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields: Vec<String> = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => fields.last_mut()?.push(n),
                None => fields.last_mut()?.push('\\'),
            },
            ':' if fields.len() < 5 => fields.push(String::new()),
            other => fields.last_mut()?.push(other),
        }
    }
    if fields.len() < 5 {
        return None;
    }
    fields.truncate(4);
    fields.try_into().ok()
}

/// Puts `line` into `content` in place of the lines for the same host, port,
/// database and user (the first keeps its place; later duplicates go), or at
/// the top when there is none, so that no wildcard line above shadows it.
/// Every other line is kept byte for byte.
pub fn upsert(content: &[u8], line: &Line<'_>) -> Vec<u8> {
    let new_line = format_line(line);
    let key = [line.host, line.port, line.database, line.user].map(str::to_string);
    let mut out = Vec::with_capacity(content.len() + new_line.len() + 1);
    let mut placed = false;
    for raw in content.split_inclusive(|b| *b == b'\n') {
        let text = std::str::from_utf8(raw).unwrap_or("");
        let body = text.strip_suffix('\n').unwrap_or(text);
        if parse_key(body).as_ref() == Some(&key) {
            if !placed {
                out.extend_from_slice(new_line.as_bytes());
                out.push(b'\n');
                placed = true;
            }
            continue;
        }
        out.extend_from_slice(raw);
    }
    if !placed {
        let mut top = Vec::with_capacity(out.len() + new_line.len() + 1);
        top.extend_from_slice(new_line.as_bytes());
        top.push(b'\n');
        top.extend_from_slice(&out);
        out = top;
    }
    out
}

/// The pgpass file libpq reads: `PGPASSFILE`, else `~/.pgpass`.
pub fn default_path() -> Option<PathBuf> {
    crate::env::path(&crate::env::ProcessEnv, "PGPASSFILE")
        .or_else(|| dirs::home_dir().map(|h| h.join(".pgpass")))
}

/// Replaces `path` atomically with `content`: a 0600 temporary file in the
/// same directory, flushed, then renamed over it. A symlink is followed, so
/// the file it points to is the one replaced.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(_) => path.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.redshift-creds.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(user: &'a str, password: &'a str) -> Line<'a> {
        Line {
            host: "db.example.com",
            port: "5439",
            database: "dev",
            user,
            password,
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", line("IAM:alice", "s3cret-pw"));
        assert!(
            !shown.contains("s3cret-pw") && shown.contains("***"),
            "{shown}"
        );
    }

    #[test]
    fn escapes_colons_and_backslashes() {
        assert_eq!(escape("IAM:alice"), "IAM\\:alice");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(
            format_line(&line("IAM:alice", "p:w\\d")),
            "db.example.com:5439:dev:IAM\\:alice:p\\:w\\\\d"
        );
    }

    #[test]
    fn parse_undoes_escape() {
        let l = line("IAM:al\\ice", "x:y");
        let key = parse_key(&format_line(&l)).unwrap();
        assert_eq!(
            key,
            ["db.example.com", "5439", "dev", "IAM:al\\ice"].map(String::from)
        );
        assert_eq!(parse_key("# comment"), None);
        assert_eq!(parse_key(""), None);
        assert_eq!(parse_key("a:b:c:d"), None);
    }

    #[test]
    fn inserts_at_the_top_and_keeps_every_other_line() {
        let before =
            b"# my file\r\n*:*:*:*:wildcard\nother:5432:db:bob:pw\nno-newline-at-end:1:2:3:4";
        let after = upsert(before, &line("IAM:alice", "new"));
        let mut expected = b"db.example.com:5439:dev:IAM\\:alice:new\n".to_vec();
        expected.extend_from_slice(before);
        assert_eq!(after, expected);
    }

    #[test]
    fn replaces_the_old_line_in_place_and_drops_duplicates() {
        let before = b"a:1:b:c:d\ndb.example.com:5439:dev:IAM\\:alice:old\nx:2:y:z:w\ndb.example.com:5439:dev:IAM\\:alice:older\n";
        let after = upsert(before, &line("IAM:alice", "new"));
        assert_eq!(
            String::from_utf8(after).unwrap(),
            "a:1:b:c:d\ndb.example.com:5439:dev:IAM\\:alice:new\nx:2:y:z:w\n"
        );
    }

    #[test]
    fn another_user_or_database_is_another_line() {
        let before =
            b"db.example.com:5439:dev:IAM\\:bob:pw\ndb.example.com:5439:prod:IAM\\:alice:pw\n";
        let after = upsert(before, &line("IAM:alice", "new"));
        assert!(after.ends_with(before));
    }

    #[test]
    fn writes_0600_atomically_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real-pgpass");
        std::fs::write(&real, b"old\n").unwrap();
        let link = tmp.path().join(".pgpass");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&real, &link).unwrap();
        write_atomically(&link, b"new\n").unwrap();
        assert_eq!(std::fs::read(&link).unwrap(), b"new\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::read(&real).unwrap(), b"new\n");
            let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary file left");
    }
}
