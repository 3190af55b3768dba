use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::{MetadataRequest, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion, Request};
use sluice_sasl::{ScramClient, ScramCredential, ScramMechanism};

use super::*;
use crate::auth::CredentialChange;

fn server(max_reauth: Option<Duration>) -> SaslServer {
    let server = SaslServer::in_memory(vec![Mechanism::Plain, Mechanism::ScramSha256], max_reauth);
    let changes = ["alice", "bob"]
        .into_iter()
        .map(|user| CredentialChange::Upsert {
            user: user.into(),
            mechanism: ScramMechanism::Sha256,
            credential: ScramCredential::new(ScramMechanism::Sha256, b"pw", b"salt".to_vec(), 4096),
        })
        .collect();
    server.credentials.apply(changes).unwrap();
    server
}

fn frame<R: Request + Encodable>(req: &R, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7);
    let mut buf = BytesMut::new();
    header.encode(&mut buf, R::header_version(version)).unwrap();
    req.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn answered<R: Decodable + HeaderVersion>(verdict: Verdict, version: i16) -> (R, bool) {
    let Verdict::Answer { response, close } = verdict else {
        panic!("expected an answer, got {verdict:?}");
    };
    let mut bytes = response.to_bytes().unwrap();
    let header = ResponseHeader::decode(&mut bytes, R::header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    (R::decode(&mut bytes, version).unwrap(), close)
}

fn handshake(
    conn: &mut SaslConnection,
    server: &SaslServer,
    mechanism: &str,
    version: i16,
) -> SaslHandshakeResponse {
    let req =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    answered(conn.on_frame(server, &frame(&req, version)), version).0
}

fn authenticate(
    conn: &mut SaslConnection,
    server: &SaslServer,
    bytes: Vec<u8>,
) -> (SaslAuthenticateResponse, bool) {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
    answered(conn.on_frame(server, &frame(&req, 1)), 1)
}

fn metadata() -> Bytes {
    frame(&MetadataRequest::default(), 4)
}

fn scram_login(
    conn: &mut SaslConnection,
    server: &SaslServer,
    user: &str,
) -> SaslAuthenticateResponse {
    assert_eq!(handshake(conn, server, "SCRAM-SHA-256", 1).error_code, 0);
    let (mut client, first) = ScramClient::start(ScramMechanism::Sha256, user, "pw").unwrap();
    let (challenge, close) = authenticate(conn, server, first);
    assert!(!close && challenge.error_code == 0);
    let last = client.server_first(&challenge.auth_bytes).unwrap();
    let (done, close) = authenticate(conn, server, last);
    assert!(!close, "{:?}", done.error_message);
    client.server_final(&done.auth_bytes).unwrap();
    done
}

#[test]
fn only_the_exchange_and_api_versions_before_authentication() {
    let server = server(None);
    let mut conn = SaslConnection::new();
    assert_eq!(conn.max_frame(100 << 20), MAX_RECEIVE_BEFORE_AUTH);
    assert!(matches!(
        conn.on_frame(&server, &metadata()),
        Verdict::Close(_)
    ));
    let versions = frame(&kafka_protocol::messages::ApiVersionsRequest::default(), 3);
    assert!(
        matches!(conn.on_frame(&server, &versions), Verdict::Dispatch(p) if p.name() == "ANONYMOUS")
    );
    // A few ApiVersions may come first, not an endless stream of them.
    let mut spammer = SaslConnection::new();
    for _ in 0..MAX_VERSIONS_BEFORE_AUTH {
        assert!(matches!(
            spammer.on_frame(&server, &versions),
            Verdict::Dispatch(_)
        ));
    }
    assert!(matches!(
        spammer.on_frame(&server, &versions),
        Verdict::Close(_)
    ));
    let done = scram_login(&mut conn, &server, "alice");
    assert_eq!(done.session_lifetime_ms, 0, "no connections.max.reauth.ms");
    assert!(
        matches!(conn.on_frame(&server, &metadata()), Verdict::Dispatch(p) if p.to_string() == "User:alice")
    );
    assert_eq!(conn.max_frame(100 << 20), 100 << 20);
}

#[test]
fn unknown_mechanisms_and_bad_passwords_end_the_connection() {
    let server = server(None);
    let mut conn = SaslConnection::new();
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI"));
    let (response, close): (SaslHandshakeResponse, bool) =
        answered(conn.on_frame(&server, &frame(&req, 1)), 1);
    assert!(close);
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256"]);

    let mut conn = SaslConnection::new();
    assert_eq!(handshake(&mut conn, &server, "PLAIN", 1).error_code, 0);
    let (response, close) = authenticate(&mut conn, &server, b"\0alice\0wrong".to_vec());
    assert!(close);
    assert_eq!(
        response.error_code,
        ResponseError::SaslAuthenticationFailed.code()
    );
    assert!(matches!(
        conn.on_frame(&server, &metadata()),
        Verdict::Close(_)
    ));
}

#[test]
fn v0_handshake_takes_bare_tokens() {
    let server = server(None);
    let mut conn = SaslConnection::new();
    assert_eq!(handshake(&mut conn, &server, "PLAIN", 0).error_code, 0);
    // The token is the whole frame, not a Kafka request; the answer is bare too.
    let Verdict::Answer {
        response,
        close: false,
    } = conn.on_frame(&server, &Bytes::from_static(b"\0bob\0pw"))
    else {
        panic!("expected a bare answer");
    };
    assert!(response.is_empty());
    assert!(
        matches!(conn.on_frame(&server, &metadata()), Verdict::Dispatch(p) if p.to_string() == "User:bob")
    );
    // A bad bare token closes at once (v0 cannot carry an error).
    let mut conn = SaslConnection::new();
    handshake(&mut conn, &server, "PLAIN", 0);
    assert!(matches!(
        conn.on_frame(&server, &Bytes::from_static(b"\0bob\0no")),
        Verdict::Close(_)
    ));
}

#[test]
fn sessions_expire_and_reauthentication_keeps_the_principal() {
    let server = server(Some(Duration::from_millis(150)));
    let mut conn = SaslConnection::new();
    let done = scram_login(&mut conn, &server, "alice");
    assert!(
        (1..=150).contains(&done.session_lifetime_ms),
        "{}",
        done.session_lifetime_ms
    );
    // Re-authenticating as the same user extends the session.
    scram_login(&mut conn, &server, "alice");
    assert!(matches!(
        conn.on_frame(&server, &metadata()),
        Verdict::Dispatch(_)
    ));
    // Another mechanism, or another user, is refused.
    assert_eq!(
        handshake(&mut conn, &server, "PLAIN", 1).error_code,
        ResponseError::IllegalSaslState.code()
    );
    let mut conn = SaslConnection::new();
    scram_login(&mut conn, &server, "alice");
    handshake(&mut conn, &server, "SCRAM-SHA-256", 1);
    let (mut client, first) = ScramClient::start(ScramMechanism::Sha256, "bob", "pw").unwrap();
    let (challenge, _) = authenticate(&mut conn, &server, first);
    let last = client.server_first(&challenge.auth_bytes).unwrap();
    let (refused, close) = authenticate(&mut conn, &server, last);
    assert!(close);
    assert_eq!(
        refused.error_code,
        ResponseError::SaslAuthenticationFailed.code()
    );
    // After the deadline, ordinary requests close the connection.
    let mut conn = SaslConnection::new();
    scram_login(&mut conn, &server, "alice");
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(
        conn.on_frame(&server, &metadata()),
        Verdict::Close(_)
    ));
}
