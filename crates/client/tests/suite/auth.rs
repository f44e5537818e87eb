//! The client against a server with `--ws-auth capability-token`: the token opens the
//! connection; without it, or with another, connecting fails with the server's 401.

use letta_app_server_client::{Client, Error, Transport};
use letta_app_server_tests::server::Auth;

use crate::support::{Connect, TestServer, new_runtime};

const TOKEN: &str = "client-s3cret";

#[tokio::test]
async fn the_token_opens_the_connection_and_nothing_else_does() {
    let server =
        TestServer::start_with(|config| config.auth = Some(Auth::capability_token(TOKEN).expect("a token"))).await;
    for transport in [Transport::Single, Transport::Split] {
        let client = server
            .builder(transport)
            .token(TOKEN)
            .connect()
            .await
            .expect("connects with the token");
        let runtime = new_runtime(&client, "Authenticated").await;
        assert!(runtime.agent_id.is_some());
        client.close().await;
    }
    for builder in [
        Client::builder(&server.url("")),
        Client::builder(&server.url("")).token("not-the-token"),
    ] {
        match builder.connect().await {
            Err(Error::Connect { message, .. }) => assert!(message.contains("401"), "{message}"),
            other => panic!("expected a refused connection, got {:?}", other.map(|_| ())),
        }
    }
}
