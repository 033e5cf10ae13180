//! Bad input: one clear message, exit 2, nothing on stdout, no API call, the cache untouched.

mod environment;
mod flags;
mod hostile_config;
mod slips;
