//! Where the AWS SDK looks: profile, region, endpoint URL, and the access key that environment credentials carry.

use super::layers::{Layer, Origin};
use super::{AwsScope, Origins};
use crate::env::{self, Env};
use crate::error::Error;
use crate::rules;

/// Resolves the AWS target from the merged layers, taking the fields it owns.
pub(super) fn resolve(
    m: &mut Layer,
    e: &dyn Env,
    origins: &mut Origins,
) -> Result<AwsScope, Error> {
    let profile = m.profile.take();
    if let Some(p) = &profile {
        rules::profile(&p.input(), &p.value)?;
    }
    let region = m.region.take();
    if let Some(r) = &region {
        rules::region(&r.input(), &r.value)?;
    }
    let endpoint_url = m.endpoint_url.take();
    if let Some(u) = &endpoint_url {
        rules::endpoint_url(&u.input(), &u.value)?;
    }
    let access_key_id =
        env::text(e, "AWS_ACCESS_KEY_ID").map_err(|n| Error::Usage(n.to_string()))?;
    origins.record("region", region.as_ref());
    origins.record("endpoint_url", endpoint_url.as_ref());
    let effective_profile = match &profile {
        Some(p) => p.value.clone(),
        None => "default".to_string(),
    };
    origins.push(
        "aws_profile",
        effective_profile.clone(),
        profile
            .as_ref()
            .map_or(Origin::Default, |p| p.origin.clone()),
    );
    Ok(AwsScope {
        effective_profile,
        profile: profile.map(|p| p.value),
        region: region.map(|r| r.value),
        endpoint_url: endpoint_url.map(|u| u.value),
        access_key_id: access_key_id.filter(|v| !v.is_empty()),
        identity: super::identity::identity(e),
    })
}
