//! `doctor`: what this machine offers (config file, cache directory, store, AWS identity), without printing any secret.

use redshift_creds_core::cache;
use redshift_creds_core::cli::DoctorArgs;
use redshift_creds_core::config::ProcessEnv;
use redshift_creds_core::error::Error;
use redshift_creds_core::housekeeping::describe_dir;
use std::io::Write;

/// Reports what this machine offers, without printing any secret. Returns
/// whether every check passed.
pub fn doctor(args: &DoctorArgs, out: &mut dyn Write) -> Result<bool, Error> {
    if let Some(p) = &args.profile {
        redshift_creds_core::rules::profile("--profile", p)?;
    }
    if let Some(r) = &args.region {
        redshift_creds_core::rules::region("--region", r)?;
    }
    if let Some(u) = &args.endpoint_url {
        redshift_creds_core::rules::endpoint_url("--endpoint-url", u)?;
    }
    let env = ProcessEnv;
    let mut ok = true;
    let mut lines = Vec::new();

    // The config file.
    match redshift_creds_core::config_file::path(&env) {
        None => lines.push(
            "config file: no config directory is known (set REDSHIFT_CREDS_CONFIG)".to_string(),
        ),
        Some(path) => match redshift_creds_core::config_file::load(&path) {
            Ok(None) => lines.push(format!(
                "config file: {} (not found; optional)",
                path.display()
            )),
            Ok(Some(f)) => {
                let names: Vec<&str> = f.connections.keys().map(String::as_str).collect();
                lines.push(format!(
                    "config file: {} (ok: {} connection(s){}{})",
                    path.display(),
                    names.len(),
                    if names.is_empty() { "" } else { ": " },
                    names.join(", ")
                ));
            }
            Err(e) => {
                ok = false;
                lines.push(format!("config file: ERROR {e}"));
            }
        },
    }

    // The lock and cache directory.
    let dir = redshift_creds_core::config::cache_dir(&env);
    match &dir {
        Err(e) => {
            ok = false;
            lines.push(format!("cache and lock directory: ERROR {e}"));
        }
        Ok(None) => {
            ok = false;
            lines.push(
                "cache and lock directory: none known (set REDSHIFT_CREDS_CACHE_DIR)".to_string(),
            );
        }
        Ok(Some(d)) => lines.push(format!(
            "cache and lock directory: {}",
            describe_dir(d, &mut ok)
        )),
    }
    let dir = dir.ok().flatten();

    // The store auto picks.
    lines.push(format!(
        "cache store for --cache auto: {}",
        cache::probe_auto(dir.as_deref())
    ));

    // AWS credentials.
    let aws = crate::session::identity(
        args.profile.as_deref(),
        args.region.as_deref(),
        args.endpoint_url.as_deref(),
    );
    match aws {
        Ok(who) => lines.push(format!("AWS credentials: {who}")),
        Err(why) => {
            ok = false;
            lines.push(format!("AWS credentials: ERROR {why}"));
        }
    }

    let mut text = lines.join("\n");
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(Error::Output)?;
    Ok(ok)
}
