//! `get` keys its cache by who is calling and where: another credentials file, or another endpoint, is another entry.

use crate::support::counting::CountingServer;
use crate::support::{Sandbox, password, serverless_get};

#[test]
fn switching_the_shared_credentials_file_is_a_miss() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let a = sb.path().join("creds-a");
    let b = sb.path().join("creds-b");
    std::fs::write(
        &a,
        "[default]\naws_access_key_id = A\naws_secret_access_key = a\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "[default]\naws_access_key_id = B\naws_secret_access_key = b\n",
    )
    .unwrap();
    let run = |file: &std::path::Path| {
        let out = sb
            .cmd(&[
                "get",
                "--cluster-identifier",
                "examplecluster",
                "--with-iam",
                "--region",
                "us-east-1",
                "--endpoint-url",
                &url,
                "--cache",
                "file",
            ])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_SHARED_CREDENTIALS_FILE", file)
            .output()
            .unwrap();
        password(&out)
    };
    let first = run(&a);
    assert_eq!(run(&a), first, "the same identity is a hit");
    assert_eq!(server.calls(), 1);
    let other = run(&b);
    assert_ne!(other, first, "identity B never gets A's password");
    assert_eq!(server.calls(), 2);
}

#[test]
fn changing_the_serverless_endpoint_variable_is_a_miss() {
    let server = CountingServer::start();
    let url = server.url();
    let sb = Sandbox::new();
    let run = |endpoint: &str| {
        let out = sb
            .cmd(&serverless_get(None))
            .env("AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS", endpoint)
            .output()
            .unwrap();
        password(&out)
    };
    assert_eq!(run(&url), "serverless-pw-1");
    assert_eq!(run(&url), "serverless-pw-1", "a hit");
    let other = url.replace("127.0.0.1", "localhost");
    assert_eq!(run(&other), "serverless-pw-2", "another endpoint is a miss");
    assert_eq!(server.calls(), 2);
}
