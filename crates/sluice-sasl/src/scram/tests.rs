use super::*;
use proptest::prelude::*;

struct Store(Vec<(String, ScramMechanism, ScramCredential)>);

impl Credentials for Store {
    fn scram(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        self.0
            .iter()
            .find(|(u, mech, _)| u == user && *mech == m)
            .map(|(_, _, c)| c.clone())
    }
}

fn store(user: &str, password: &str) -> Store {
    Store(
        [ScramMechanism::Sha256, ScramMechanism::Sha512]
            .into_iter()
            .map(|m| {
                let salt = random_salt(m).unwrap();
                (
                    user.to_owned(),
                    m,
                    ScramCredential::new(m, password.as_bytes(), salt, 4096),
                )
            })
            .collect(),
    )
}

/// RFC 7677 section 3: the SCRAM-SHA-256 example exchange, checked against our server.
#[test]
fn rfc7677_example() {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let credential = ScramCredential::new(ScramMechanism::Sha256, b"pencil", salt, 4096);
    let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    let state = ServerState {
        mechanism: ScramMechanism::Sha256,
        user: "user".into(),
        credential,
        gs2_header: "n,,".into(),
        client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
        server_first: format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
        nonce: nonce.into(),
    };
    let client_final = format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    let step = state.last(client_final.as_bytes()).unwrap();
    assert_eq!(
        step,
        Step::Done {
            response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            principal: "user".into(),
            expires_at: None,
        }
    );
}

fn exchange(
    store: &Store,
    m: ScramMechanism,
    user: &str,
    password: &str,
) -> Result<String, SaslError> {
    let (mut client, first) = ScramClient::start(m, user, password).unwrap();
    let (state, server_first) = ServerState::first(m, &first, store)?;
    let client_final = client.server_first(&server_first).unwrap();
    match state.last(&client_final)? {
        Step::Done {
            response,
            principal,
            ..
        } => {
            client.server_final(&response).unwrap();
            Ok(principal)
        }
        Step::Challenge(_) => panic!("SCRAM ends after two messages"),
    }
}

#[test]
fn client_and_server_agree_for_both_hashes() {
    let store = store("alice,=x", "s3cret");
    for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        assert_eq!(
            exchange(&store, m, "alice,=x", "s3cret").unwrap(),
            "alice,=x"
        );
        assert_eq!(
            exchange(&store, m, "alice,=x", "wrong"),
            Err(SaslError::InvalidCredentials(m.mechanism()))
        );
        assert_eq!(
            exchange(&store, m, "bob", "s3cret"),
            Err(SaslError::InvalidCredentials(m.mechanism()))
        );
    }
}

#[test]
fn the_exchange_is_bound_to_its_nonce_and_header() {
    let store = store("alice", "pw");
    let m = ScramMechanism::Sha256;
    let (mut client, first) = ScramClient::start(m, "alice", "pw").unwrap();
    let (state, server_first) = ServerState::first(m, &first, &store).unwrap();
    let good = String::from_utf8(client.server_first(&server_first).unwrap()).unwrap();
    // Another nonce (a replayed client-final) is refused.
    let replayed = good.replacen(",r=", ",r=X", 1);
    assert!(state.last(replayed.as_bytes()).is_err());
    let (state, _) = ServerState::first(m, &first, &store).unwrap();
    // A channel binding other than the gs2 header is refused.
    let rebound = good.replacen("c=biws", "c=eSws", 1);
    assert!(matches!(
        state.last(rebound.as_bytes()),
        Err(SaslError::Malformed { .. })
    ));
    // A server that does not hold the credential cannot finish.
    assert_eq!(
        client.server_final(b"v=AAAA"),
        Err(ScramClientError::ServerNotVerified)
    );
}

#[test]
fn client_first_grammar() {
    let store = store("alice", "pw");
    let m = ScramMechanism::Sha512;
    let first = |msg: &str| ServerState::first(m, msg.as_bytes(), &store).map(|_| ());
    assert!(first("n,,n=alice,r=abc").is_ok());
    assert!(first("y,,n=alice,r=abc").is_ok());
    assert!(first("n,a=alice,n=alice,r=abc").is_ok());
    assert!(first("n,,n=alice,r=abc,ext=1").is_ok());
    assert_eq!(
        first("n,a=bob,n=alice,r=abc"),
        Err(SaslError::InvalidCredentials(m.mechanism()))
    );
    assert_eq!(
        first("n,,n=alice,r=abc,tokenauth=true"),
        Err(SaslError::InvalidCredentials(m.mechanism()))
    );
    for bad in [
        "",
        "n,,",
        "p=tls-unique,,n=alice,r=abc",
        "n,,n=alice",
        "n,,n=alice,r=",
        "n,,r=abc,n=alice",
        "n,,n=al=ice,r=abc",
        "n,,n=alice,r=a b",
        "n,,n=alice,r=abc,m=1",
        "n,,n=,r=abc",
    ] {
        assert!(
            matches!(first(bad), Err(SaslError::Malformed { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn names_round_trip_through_the_escaping() {
    for name in ["plain", "a,b", "a=b", "=2C", ",,==", ""] {
        assert_eq!(decode_name(&encode_name(name)).as_deref(), Some(name));
    }
    assert_eq!(decode_name("a=2"), None);
    assert_eq!(decode_name("a=41"), None);
}

#[test]
fn iteration_bounds_are_kafkas() {
    let m = ScramMechanism::Sha256;
    assert!(!m.valid_iterations(4095));
    assert!(m.valid_iterations(4096));
    assert!(m.valid_iterations(16_384));
    assert!(!m.valid_iterations(16_385));
    assert!(!m.valid_iterations(-1));
}

proptest! {
    /// Arbitrary client messages end in an error or a challenge, never a panic.
    #[test]
    fn server_survives_arbitrary_messages(first in proptest::collection::vec(any::<u8>(), 0..200),
                                          last in proptest::collection::vec(any::<u8>(), 0..200)) {
        static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
        let store = STORE.get_or_init(|| store("alice", "pw"));
        let prefixed = [b"n,,n=alice,r=x".as_slice(), &first].concat();
        for input in [first.as_slice(), prefixed.as_slice()] {
            if let Ok((state, _)) = ServerState::first(ScramMechanism::Sha256, input, store) {
                let _ = state.last(&last);
            }
        }
    }
}
