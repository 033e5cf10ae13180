//! `get`: the credential from each API, against the counting server and moto, and its output formats.

mod apis;
mod counting;
mod hardening;
mod hostile;
mod identity;
mod moto;
mod proxy;
