//! What goes on stdout: the JSON credential-process contract, or the bare password.

use crate::cli::OutputFormat;
use crate::credential::Credential;
use serde::Serialize;
use std::io::{self, Write};
use zeroize::Zeroizing;

/// The contract object: the AWS CLI's keys plus `Version`.
#[derive(Serialize)]
struct Contract<'a> {
    #[serde(rename = "Version")]
    version: u32,
    #[serde(rename = "DbUser")]
    db_user: &'a str,
    #[serde(rename = "DbPassword")]
    db_password: &'a str,
    #[serde(rename = "Expiration")]
    expiration: String,
}

/// Writes the credential in the requested form, with a trailing newline, in
/// one write from a buffer that is zeroized afterwards.
pub(crate) fn write(out: &mut dyn Write, format: OutputFormat, c: &Credential) -> io::Result<()> {
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    match format {
        OutputFormat::Json => {
            let contract = Contract {
                version: 1,
                db_user: &c.db_user,
                db_password: c.expose_password(),
                expiration: c.expiration_rfc3339(),
            };
            serde_json::to_writer(&mut *buf, &contract).map_err(io::Error::other)?;
        }
        OutputFormat::Password => buf.extend_from_slice(c.expose_password().as_bytes()),
    }
    buf.push(b'\n');
    out.write_all(&buf)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn cred() -> Credential {
        Credential {
            db_user: "IAM:temp_creds_user".into(),
            password: SecretString::from(
                "EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==",
            ),
            expiration: 1_481_231_573,
        }
    }

    #[test]
    fn json_has_the_aws_cli_keys_plus_version() {
        let mut out = Vec::new();
        write(&mut out, OutputFormat::Json, &cred()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"Version\":1,\"DbUser\":\"IAM:temp_creds_user\",\"DbPassword\":\
             \"EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==\",\
             \"Expiration\":\"2016-12-08T21:12:53Z\"}\n"
        );
    }

    #[test]
    fn password_output_is_the_password_and_a_newline() {
        let mut out = Vec::new();
        write(&mut out, OutputFormat::Password, &cred()).unwrap();
        assert_eq!(
            out,
            b"EXAMPLEjArE3hcnQj8zt4XQj9Xtma8oxYEM8OyxpDHwXVPyJYBDm/gqX2Eeaq6P3DgTzgPg==\n"
        );
    }
}
