//! redshift-creds-aws: the AWS side of redshift-creds, and the whole program that `redshift-creds` hands a miss to.
//!
//! The only crate that imports `aws_sdk_*`. One AWS [`session`] per run,
//! one source per API ([`redshift`], [`serverless`], the Identity Center token in `idc`), one endpoint lookup ([`endpoint`]), the [`Aws`] [`Source`]
//! that refreshes under the lock, and `doctor`.

mod ahead;
mod dispatch;
mod doctor;
mod endpoint;
mod failure;
mod idc;
mod proxy;
mod redshift;
mod serverless;
mod session;
mod signin;
mod source;

pub use dispatch::run;
pub use redshift_creds_core::Source;
pub use source::Aws;
