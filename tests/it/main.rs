//! The integration tests: one crate, one module per user-facing feature. A new test goes in the module of the feature it exercises; fakes and real peers live under `support`.

mod clients;
mod completions;
mod concurrency;
mod config_file;
mod cycles;
mod examples;
mod exec;
mod front;
mod get;
mod housekeeping;
mod idc;
mod inputs;
mod layout;
mod man;
mod pgpass;
mod private_paths;
mod proxy;
mod refresh_ahead;
mod signin;
mod stores;
mod support;
