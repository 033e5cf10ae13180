//! The AWS [`Source`]: a hit from the cache, else a refresh from the API under the refresh lock.

use crate::endpoint::EndpointSource;
use crate::redshift::RedshiftSource;
use crate::serverless::ServerlessSource;
use crate::session::Session;
use redshift_creds_core::cache::refresh::{self, Fetch, SystemClock};
use redshift_creds_core::config::{Api, Resolved};
use redshift_creds_core::credential::Credential;
use redshift_creds_core::endpoint::Endpoint;
use redshift_creds_core::error::Error;
use redshift_creds_core::source::{self, Source};
use redshift_creds_core::token::IdcToken;

/// Entries from GetClusterCredentials(WithIAM) or serverless GetCredentials,
/// and DescribeClusters or GetWorkgroup, through one [`Session`].
pub struct Aws {
    session: Session,
}

impl Aws {
    /// A source for this request's AWS target; nothing is loaded until a miss.
    pub fn new(r: &Resolved) -> Aws {
        Aws {
            session: Session::new(&r.request.aws, r.settings.api_timeout),
        }
    }

    /// The API call that makes a new credential for `r`.
    pub(crate) fn credential_fetch<'a>(
        &'a self,
        r: &'a Resolved,
    ) -> Box<dyn Fetch<Credential> + 'a> {
        let (request, session) = (&r.request, &self.session);
        if request.token.is_some() {
            // Fail closed: never a password in place of the token asked for.
            return Box::new(NotAPassword);
        }
        match r.request.api {
            Api::ServerlessGetCredentials => Box::new(ServerlessSource { request, session }),
            _ => Box::new(RedshiftSource { request, session }),
        }
    }

    /// The API call that finds the endpoint for `r`: GetWorkgroup for a
    /// workgroup, else DescribeClusters.
    fn endpoint_fetch<'a>(&'a self, r: &'a Resolved) -> EndpointSource<'a> {
        EndpointSource {
            request: &r.request,
            session: &self.session,
            clock: &SystemClock,
        }
    }
}

/// The credential fetch of a request that asked for a token: it refuses,
/// so that no path (the proxy, a refresh) quietly logs in with a password
/// the user did not ask for.
struct NotAPassword;

impl Fetch<Credential> for NotAPassword {
    fn fetch(&self) -> Result<Credential, Error> {
        Err(Error::Usage(
            "--identity-center asks for an Identity Center token, and this needs a password: \
             drop --identity-center (or identity_center) here"
                .into(),
        ))
    }
}

impl Aws {
    /// The request's credential if it stays valid for longer than `margin` seconds:
    /// from the cache, else fetched under the refresh lock. A margin at least the
    /// cached entry's remaining lifetime forces a fetch (after the lock, when
    /// another process may have refreshed the entry already).
    pub(crate) fn credential_within(&self, r: &Resolved, margin: i64) -> Result<Credential, Error> {
        let mut cache = source::credential_cache(r)?;
        let fetch = self.credential_fetch(r);
        let (credential, outcome) = refresh::obtain(&mut cache, &*fetch, &SystemClock, margin)?;
        tracing::debug!(?outcome, store = %cache.store().name(), "credential ready");
        Ok(credential)
    }
}

impl Source for Aws {
    fn credential(&self, r: &Resolved) -> Result<Credential, Error> {
        self.credential_within(r, r.settings.refresh_margin)
    }

    /// The request's Identity Center token, through the same cache, stores
    /// and refresh lock as a password, under the token's own key.
    fn token(&self, r: &Resolved) -> Result<IdcToken, Error> {
        let token_type = r.request.token.ok_or_else(|| {
            Error::Usage("no Identity Center token was asked for (--identity-center)".into())
        })?;
        let mut cache = source::token_cache(r, token_type)?;
        let fetch = crate::idc::IdcSource {
            request: &r.request,
            session: &self.session,
        };
        let (token, outcome) =
            refresh::obtain(&mut cache, &fetch, &SystemClock, r.settings.refresh_margin)?;
        tracing::debug!(?outcome, store = %cache.store().name(), "token ready");
        Ok(token)
    }

    fn endpoint(&self, r: &Resolved) -> Result<Endpoint, Error> {
        let mut cache = source::endpoint_cache(r)?;
        let fetch = self.endpoint_fetch(r);
        let (found, _) = refresh::obtain(&mut cache, &fetch, &SystemClock, 0)?;
        Ok(found.endpoint)
    }
}
