//! Shell completion: the scripts `completions SHELL` prints, and the answers the program gives them on each TAB.
//!
//! The scripts are clap_complete's dynamic ones (`CompleteEnv`): on TAB the
//! shell runs `COMPLETE=<shell> redshift-creds -- <words>` and the program
//! answers from its own clap definition. That sidesteps clap_complete's
//! static bash generator, whose case labels do not match its own loop for a
//! hyphenated program name (clap-rs/clap#6421), and lets connection names
//! come from the config file.

use crate::cli::Cli;
use clap::CommandFactory;
use clap_complete::env::{EnvCompleter, Shells};

/// The variable that turns a run into a completion request.
const VAR: &str = "COMPLETE";

/// The program the scripts complete, and run to get the answers.
const BIN: &str = "redshift-creds";

/// Answers a completion request and exits, when `COMPLETE` is set; otherwise
/// returns at once. It reads nothing but the config file (for connection
/// names): no cache, no lock, no AWS.
pub fn answer() {
    // clap_complete builds the whole command before it looks at the
    // variable; a plain run (every cache hit) must not pay for that.
    if crate::env::Env::var_os(&crate::env::ProcessEnv, VAR).is_none_or(|v| v.is_empty()) {
        return;
    }
    clap_complete::CompleteEnv::with_factory(command)
        .var(VAR)
        .bin(BIN)
        .completer(BIN)
        .complete();
}

/// The CLI as completion sees it: the command after `exec NAME --` completes
/// as a command (the CLI's own definition, which every plain run builds, stays
/// free of it).
fn command() -> clap::Command {
    Cli::command().mut_subcommand("exec", |exec| {
        exec.mut_arg("command", |arg| {
            arg.add(clap_complete::engine::ArgValueCompleter::new(
                crate::candidates::exec_command,
            ))
        })
    })
}

/// The completion script for `shell`, to be sourced (bash), put on `fpath`
/// as `_redshift-creds` (zsh) or in fish's completions directory.
pub fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut text = Vec::new();
    let name = shell.to_string();
    let builtins = Shells::builtins();
    let Some(completer): Option<&dyn EnvCompleter> = builtins.completer(&name) else {
        // Every shell clap_complete names has a dynamic completer; keep the
        // static script as a fallback should that ever change.
        clap_complete::generate(shell, &mut Cli::command(), BIN, &mut text);
        return text;
    };
    // Writing to a Vec cannot fail.
    let _ = completer.write_registration(VAR, BIN, BIN, BIN, &mut text);
    if shell == clap_complete::Shell::Zsh {
        // Autoloaded from fpath, the file's body runs on the first TAB: make
        // that TAB complete too, not only register the function.
        text.extend_from_slice(
            b"\nif [ \"$funcstack[1]\" = \"_redshift-creds\" ]; then\n    \
              _clap_dynamic_completer_redshift_creds \"$@\"\nfi\n",
        );
    }
    text
}
