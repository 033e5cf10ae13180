//! The target and the API: cluster, workgroup or custom domain (or what a Redshift host name says), the database user, database and groups, and the rules that tie them together.

use super::layers::{Inferred, Layer, Origin, Sourced};
use super::{Api, AwsScope, Origins, Request};
use crate::endpoint::HostKind;
use crate::error::Error;
use crate::rules;
use crate::token::TokenType;

/// The cluster, workgroup and custom domain in force, each checked.
struct Names {
    cluster: Option<Sourced<String>>,
    workgroup: Option<Sourced<String>>,
    domain: Option<Sourced<String>>,
}

/// Resolves the target and the API from the merged layers, taking the
/// fields it owns: a [`Request`] whose other fields (`connection`,
/// `duration_seconds`, `aws`) are left empty for the caller to fill in.
pub(super) fn resolve(
    m: &mut Layer,
    inferred: Inferred,
    origins: &mut Origins,
) -> Result<Request, Error> {
    let names = names(m, inferred)?;
    let with_iam = m.with_iam.take();
    let idc = identity_center(m, &names, with_iam.as_ref())?;
    let api = api(
        &names,
        idc.is_some() || with_iam.as_ref().is_some_and(|w| w.value),
    )?;
    let (db_user, groups, auto_create) =
        (m.db_user.take(), m.db_groups.take(), m.auto_create.take());
    if api != Api::GetClusterCredentials {
        refuse_user_fields(api, idc.is_some(), &db_user, &groups, &auto_create)?;
    } else if names.cluster.is_none() && names.domain.is_none() {
        return Err(Error::Usage(
            "missing --cluster-identifier: name the cluster (or give --workgroup, --custom-domain-name, or a \
             Redshift --host name)"
                .into(),
        ));
    }
    let db_user = match (api, db_user) {
        (Api::GetClusterCredentials, Some(u)) => {
            rules::db_user(&u.input(), &u.value)?;
            Some(u)
        }
        (Api::GetClusterCredentials, None) => {
            return Err(Error::Usage(
                "missing --db-user: name the database user (or use --with-iam)".into(),
            ));
        }
        (_, _) => None,
    };
    if api == Api::GetClusterCredentialsWithIam && names.cluster.is_none() && names.domain.is_none()
    {
        return Err(Error::Usage(
            "missing --cluster-identifier: --with-iam needs the cluster".into(),
        ));
    }
    let db_name = m.db_name.take();
    if let Some(n) = &db_name {
        rules::db_name(&n.input(), &n.value)?;
    }
    let db_groups = groups_in_force(groups.as_ref())?;

    for (name, value) in [
        ("cluster_identifier", &names.cluster),
        ("workgroup", &names.workgroup),
        ("custom_domain_name", &names.domain),
        ("db_user", &db_user),
        ("db_name", &db_name),
    ] {
        origins.record(name, value.as_ref());
    }
    match &idc {
        Some(i) => origins.push("api", crate::token::IDC_API.to_string(), i.origin.clone()),
        None => origins.push(
            "api",
            api.name().to_string(),
            with_iam.map_or(Origin::Default, |w| w.origin),
        ),
    }
    if let Some(g) = &groups {
        origins.push("db_groups", db_groups.join(","), g.origin.clone());
    }
    let auto_create = origins.or_default("auto_create", auto_create, false);
    Ok(Request {
        api,
        connection: None,
        cluster_identifier: names.cluster.map(|c| c.value),
        workgroup: names.workgroup.map(|w| w.value),
        custom_domain_name: names.domain.map(|d| d.value),
        db_user: db_user.map(|u| u.value),
        db_name: db_name.map(|n| n.value),
        db_groups,
        auto_create,
        duration_seconds: 0,
        aws: AwsScope::default(),
        token: idc.map(|_| TokenType::SubjectToken),
    })
}

/// `identity_center` when it is on, checked against the rest: it asks for a
/// token, not a password, for a cluster or workgroup named by its
/// identifier (GetIdentityCenterAuthToken takes no custom domain).
fn identity_center(
    m: &mut Layer,
    names: &Names,
    with_iam: Option<&Sourced<bool>>,
) -> Result<Option<Sourced<bool>>, Error> {
    let Some(idc) = m.identity_center.take().filter(|i| i.value) else {
        return Ok(None);
    };
    if let Some(w) = with_iam.filter(|w| w.value) {
        return Err(Error::Usage(format!(
            "{} and {} ask for two kinds of login: an Identity Center token or a password",
            idc.input(),
            w.input()
        )));
    }
    if names.cluster.is_none() && names.workgroup.is_none() {
        return Err(Error::Usage(format!(
            "missing --cluster-identifier or --workgroup: {} needs the cluster's identifier or the \
             workgroup's name (GetIdentityCenterAuthToken takes no custom domain)",
            idc.input()
        )));
    }
    Ok(Some(idc))
}

/// The cluster, workgroup and custom domain: as given, or, when none is
/// given, the cluster or workgroup a Redshift host name names.
fn names(m: &mut Layer, inferred: Inferred) -> Result<Names, Error> {
    let mut names = Names {
        cluster: m.cluster_identifier.take(),
        workgroup: m.workgroup.take(),
        domain: m.custom_domain_name.take(),
    };
    let none_given = names.cluster.is_none() && names.workgroup.is_none() && names.domain.is_none();
    if let (true, Some((info, host))) = (none_given, inferred) {
        let found = Some(Sourced {
            value: info.name,
            origin: Origin::HostName(Box::new(host)),
        });
        match info.kind {
            HostKind::Cluster => names.cluster = found,
            HostKind::Workgroup => names.workgroup = found,
        }
    }
    if let Some(c) = &names.cluster {
        rules::cluster_identifier(&c.input(), &c.value)?;
    }
    if let Some(w) = &names.workgroup {
        rules::workgroup(&w.input(), &w.value)?;
    }
    if let Some(d) = &names.domain {
        rules::domain_name(&d.input(), &d.value)?;
    }
    Ok(names)
}

/// The API these names and `with_iam` call for.
fn api(names: &Names, with_iam: bool) -> Result<Api, Error> {
    Ok(match (&names.workgroup, with_iam) {
        (Some(w), _) => {
            if let Some(c) = &names.cluster {
                return Err(Error::Usage(format!(
                    "{} and {} name two targets: give a cluster or a workgroup",
                    c.input(),
                    w.input()
                )));
            }
            Api::ServerlessGetCredentials
        }
        (None, true) => Api::GetClusterCredentialsWithIam,
        (None, false) => Api::GetClusterCredentials,
    })
}

/// Under an IAM-identity API, a database user, groups or auto-create
/// cannot be given, from any source.
fn refuse_user_fields(
    api: Api,
    identity_center: bool,
    db_user: &Option<Sourced<String>>,
    groups: &Option<Sourced<Vec<String>>>,
    auto_create: &Option<Sourced<bool>>,
) -> Result<(), Error> {
    let why = match api {
        _ if identity_center => {
            "with --identity-center the database user is your Identity Center identity"
        }
        Api::ServerlessGetCredentials => {
            "Redshift Serverless uses your IAM identity as the database user"
        }
        _ => "with --with-iam the database user is your IAM identity",
    };
    for (present, what) in [
        (db_user.as_ref().map(Sourced::input), "a database user"),
        (groups.as_ref().map(Sourced::input), "database groups"),
        (auto_create.as_ref().map(Sourced::input), "auto-create"),
    ] {
        if let Some(source) = present {
            return Err(Error::Usage(format!(
                "{source} cannot be used here: {why}, so {what} cannot be given"
            )));
        }
    }
    Ok(())
}

/// The groups to join: trimmed, checked, sorted, without repeats.
fn groups_in_force(groups: Option<&Sourced<Vec<String>>>) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    if let Some(g) = groups {
        for one in &g.value {
            let one = one.trim();
            rules::db_group(&g.input(), one)?;
            out.push(one.to_string());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}
