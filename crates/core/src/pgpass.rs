//! The pgpass file: libpq's escaping, replacing one connection's line, and an atomic 0600 write.

use std::path::PathBuf;
use zeroize::Zeroizing;

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
    escape_into(&mut out, field);
    out
}

fn escape_into(out: &mut String, field: &str) {
    for c in field.chars() {
        if c == '\\' || c == ':' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Formats a line, without its newline, into a buffer that is zeroized on
/// drop (it holds the password). Sized up front, so no copy is left behind
/// by a reallocation.
pub fn format_line(l: &Line<'_>) -> Zeroizing<String> {
    let fields = [l.host, l.port, l.database, l.user, l.password];
    let most = fields.iter().map(|f| f.len() * 2 + 1).sum();
    let mut out = Zeroizing::new(String::with_capacity(most));
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        escape_into(&mut out, field);
    }
    out
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
            // The fifth field is the password: never copied.
            ':' if fields.len() == 4 => {
                fields.push(String::new());
                break;
            }
            ':' => fields.push(String::new()),
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
/// The result is zeroized on drop, and sized up front so that no copy of a
/// password is left behind by a reallocation.
pub fn upsert(content: &[u8], line: &Line<'_>) -> Zeroizing<Vec<u8>> {
    let new_line = format_line(line);
    let key = [line.host, line.port, line.database, line.user].map(str::to_string);
    let same = |raw: &[u8]| {
        let text = std::str::from_utf8(raw).unwrap_or("");
        let body = text.strip_suffix('\n').unwrap_or(text);
        parse_key(body).as_ref() == Some(&key)
    };
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + new_line.len() + 1));
    let lines = || content.split_inclusive(|b| *b == b'\n');
    // A new line goes at the top, so that no wildcard line above shadows it.
    let mut placed = !lines().any(same);
    if placed {
        out.extend_from_slice(new_line.as_bytes());
        out.push(b'\n');
    }
    for raw in lines() {
        if same(raw) {
            if !placed {
                out.extend_from_slice(new_line.as_bytes());
                out.push(b'\n');
                placed = true;
            }
            continue;
        }
        out.extend_from_slice(raw);
    }
    out
}

/// The pgpass file libpq reads: `PGPASSFILE`, else `~/.pgpass`.
pub fn default_path() -> Option<PathBuf> {
    crate::env::path(&crate::env::ProcessEnv, "PGPASSFILE")
        .or_else(|| dirs::home_dir().map(|h| h.join(".pgpass")))
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
            *format_line(&line("IAM:alice", "p:w\\d")),
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
        assert_eq!(*after, expected);
    }

    #[test]
    fn replaces_the_old_line_in_place_and_drops_duplicates() {
        let before = b"a:1:b:c:d\ndb.example.com:5439:dev:IAM\\:alice:old\nx:2:y:z:w\ndb.example.com:5439:dev:IAM\\:alice:older\n";
        let after = upsert(before, &line("IAM:alice", "new"));
        assert_eq!(
            String::from_utf8(after.to_vec()).unwrap(),
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
}
