//! `--structured-logs`: each line on stderr one JSON object with `timestamp`, `level`,
//! `message` and the event's fields, including lines written to stderr by code that does
//! not log through here (they are read back from a pipe and wrapped).

use serde_json::Value;
use std::fmt::Debug;
use std::io::Write;
use std::sync::Mutex;
use tracing::field::{Field, Visit};

/// Where JSON lines go while stderr itself is the wrapping pipe: the real stderr.
static REAL_STDERR: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// One JSON line: `timestamp` (RFC 3339, UTC, milliseconds), `level`, `message`, then
/// `fields` in order (a field named like one of the first three, or said twice, is dropped).
pub fn line(level: &str, message: &str, fields: &[(String, Value)]) -> String {
    let timestamp = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let quoted = |s: &str| Value::from(s).to_string();
    let mut out = format!(
        "{{\"timestamp\":{},\"level\":{},\"message\":{}",
        quoted(&timestamp),
        quoted(level),
        quoted(message)
    );
    let mut seen = vec!["timestamp", "level", "message"];
    for (name, value) in fields {
        if !seen.contains(&name.as_str()) {
            seen.push(name);
            out.push_str(&format!(",{}:{value}", quoted(name)));
        }
    }
    out.push('}');
    out
}

/// Writes one JSON line of `message` at `level` on stderr.
pub fn say(level: &str, message: &str) {
    write(&line(level, message, &[]));
}

/// Writes an already formed line, in one write, to the real stderr.
fn write(line: &str) {
    let text = format!("{line}\n");
    let mut real = REAL_STDERR.lock().unwrap_or_else(|e| e.into_inner());
    let _ = match real.as_mut() {
        Some(f) => f.write_all(text.as_bytes()),
        None => std::io::stderr().lock().write_all(text.as_bytes()),
    };
}

/// The tracing layer of `--structured-logs`: every event as one JSON line. The module
/// that logged it is `module` (`target` is the proxy's name for a connection).
pub struct JsonLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut v = Fields::default();
        event.record(&mut v);
        let meta = event.metadata();
        v.fields.push(("module".into(), meta.target().into()));
        write(&line(meta.level().as_str(), &v.message, &v.fields));
    }
}

/// An event's message and fields, as JSON values.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.push((field.name().to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.push(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
}

/// While held, stderr (fd 2) is a pipe whose lines are wrapped as JSON `INFO` lines on the
/// real stderr, so that `eprintln!` anywhere (the proxy engine's `listening on` lines, a
/// `credential_process`'s complaints) keeps the one-object-a-line promise. Dropping it
/// puts the real stderr back and writes out what the pipe still holds.
#[cfg(unix)]
pub struct WrappedStderr {
    real: std::os::fd::OwnedFd,
    /// Says when the reader has passed on the last line.
    done: std::sync::mpsc::Receiver<()>,
}

/// Makes stderr a pipe read by a thread that wraps each line (see [`WrappedStderr`]).
#[cfg(unix)]
pub fn wrap_stderr() -> std::io::Result<WrappedStderr> {
    use std::io::BufRead;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let stderr = std::io::stderr();
    let _quiet = stderr.lock();
    // SAFETY: dup and pipe only make new descriptors, each owned at once.
    let real = unsafe {
        let fd = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        OwnedFd::from_raw_fd(fd)
    };
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both ends were just made and are owned here alone.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    *REAL_STDERR.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(std::fs::File::from(real.try_clone()?));
    // SAFETY: fd 2 becomes a copy of the write end; the write end itself is closed below.
    if unsafe { libc::dup2(write_end.as_raw_fd(), 2) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(write_end);
    // A panic aborts (the release profile) before the reader could pass its message on:
    // say it on the real stderr at once.
    std::panic::set_hook(Box::new(|info| {
        write(&line("ERROR", &info.to_string(), &[]))
    }));
    let (tell, done) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("stderr-json".into())
        .spawn(move || {
            let pipe = std::io::BufReader::new(std::fs::File::from(read_end));
            for text in pipe.split(b'\n').map_while(Result::ok) {
                let text = String::from_utf8_lossy(&text);
                let text = text.trim_end();
                if !text.is_empty() {
                    write(&line("INFO", text, &[]));
                }
            }
            let _ = tell.send(());
        })?;
    Ok(WrappedStderr { real, done })
}

#[cfg(unix)]
impl Drop for WrappedStderr {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        let _ = std::io::stderr().flush();
        // SAFETY: fd 2 goes back to the real stderr, which closes the pipe's last write end.
        unsafe { libc::dup2(self.real.as_raw_fd(), 2) };
        // A child that inherited the pipe (a credential_process) and outlives us keeps it
        // open: do not wait for it for long.
        let _ = self.done.recv_timeout(std::time::Duration::from_secs(2));
        REAL_STDERR.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_object_with_the_three_keys_first_and_control_characters_escaped() {
        let text = line(
            "WARN",
            "a\nb\u{1b}",
            &[("uid".into(), 1000.into()), ("level".into(), "x".into())],
        );
        assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "a\nb\u{1b}");
        assert_eq!(v["uid"], 1000);
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{text}");
        assert!(text.starts_with("{\"timestamp\":"), "{text}");
    }
}
