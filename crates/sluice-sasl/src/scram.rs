//! SCRAM (RFC 5802, RFC 7677) with Kafka's conventions: SHA-256 or SHA-512, credentials made
//! from a salted password computed by the admin client (AlterUserScramCredentials sends
//! `Hi(password, salt, i)`, never the password), iterations within 4096..=16384.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SecureRandom;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

use crate::{Credentials, Mechanism, SaslError, Step};

/// Most iterations Kafka accepts for a SCRAM credential.
pub const MAX_ITERATIONS: u32 = 16_384;
/// Fewest iterations accepted (Kafka's minimum for both hashes).
const MIN_ITERATIONS: u32 = 4096;
/// Random bytes in the server's part of the nonce.
const NONCE_BYTES: usize = 24;
/// Longest client nonce accepted (clients send ~32 characters).
const MAX_NONCE_LEN: usize = 1024;

/// The hash of a SCRAM mechanism, with Kafka's wire codes (`ScramMechanism` in the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256, wire code 1.
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    /// SCRAM-SHA-512, wire code 2.
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    /// The mechanism of a wire code (0 is Kafka's UNKNOWN).
    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The SASL mechanism.
    pub fn mechanism(self) -> Mechanism {
        match self {
            ScramMechanism::Sha256 => Mechanism::ScramSha256,
            ScramMechanism::Sha512 => Mechanism::ScramSha512,
        }
    }

    /// The IANA name, e.g. `SCRAM-SHA-256`.
    pub fn name(self) -> &'static str {
        self.mechanism().name()
    }

    /// Whether `iterations` is acceptable for a credential.
    pub fn valid_iterations(self, iterations: i64) -> bool {
        (i64::from(MIN_ITERATIONS)..=i64::from(MAX_ITERATIONS)).contains(&iterations)
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    /// Output length of the hash, bytes.
    pub fn hash_len(self) -> usize {
        self.digest().output_len()
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest(), data).as_ref().to_vec()
    }
}

/// `Hi(password, salt, iterations)`: what the admin client sends in AlterUserScramCredentials.
/// Iterations below 1 are treated as 1 (callers validate the count first).
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Vec<u8> {
    let mut out = vec![0; mechanism.hash_len()];
    let rounds = std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN);
    pbkdf2::derive(mechanism.pbkdf2(), rounds, salt, password, &mut out);
    out
}

/// A fresh random salt (the length of the hash, as Kafka's admin client uses).
pub fn random_salt(mechanism: ScramMechanism) -> Result<Vec<u8>, ring::error::Unspecified> {
    let mut salt = vec![0; mechanism.hash_len()];
    ring::rand::SystemRandom::new().fill(&mut salt)?;
    Ok(salt)
}

/// What the server keeps of a SCRAM password: enough to verify a client's proof, not enough
/// to produce one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt, base64 in files.
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential for a salted password (`Hi(password, salt, iterations)`).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted: &[u8],
    ) -> Self {
        let client_key = mechanism.mac(salted, b"Client Key");
        ScramCredential {
            salt,
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.mac(salted, b"Server Key"),
        }
    }

    /// The credential for a password (tests and tools; the broker never sees passwords of
    /// SCRAM users, only PLAIN logins).
    pub fn new(mechanism: ScramMechanism, password: &[u8], salt: Vec<u8>, iterations: u32) -> Self {
        let salted = salted_password(mechanism, password, &salt, iterations);
        ScramCredential::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// Whether `password` is the one this credential was made from (PLAIN logins).
    pub fn matches_password(&self, mechanism: ScramMechanism, password: &[u8]) -> bool {
        let salted = salted_password(mechanism, password, &self.salt, self.iterations);
        let client_key = mechanism.mac(&salted, b"Client Key");
        constant_time_eq(&mechanism.hash(&client_key), &self.stored_key)
    }
}

/// Compares without an early exit, so timing does not tell how much of a key matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

fn malformed(mechanism: ScramMechanism, reason: &'static str) -> SaslError {
    SaslError::Malformed {
        mechanism: mechanism.mechanism(),
        reason,
    }
}

/// Decodes a SCRAM `saslname` (`=2C` is `,`, `=3D` is `=`).
fn decode_name(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a user name as a SCRAM `saslname`.
fn encode_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The server's state between its first and last message.
#[derive(Debug)]
pub(crate) struct ServerState {
    mechanism: ScramMechanism,
    user: String,
    credential: ScramCredential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ServerState {
    /// Reads the client-first message and answers with server-first.
    pub(crate) fn first(
        mechanism: ScramMechanism,
        input: &[u8],
        credentials: &dyn Credentials,
    ) -> Result<(ServerState, Vec<u8>), SaslError> {
        let bad = |reason| malformed(mechanism, reason);
        let text = std::str::from_utf8(input).map_err(|_| bad("not UTF-8"))?;
        // gs2-header: cbind-flag "," [authzid] ","; channel binding is not offered, so "p=" is
        // refused and "y" (client could, thinks we can't) accepted.
        let mut fields = text.splitn(3, ',');
        let (Some(flag), Some(authzid), Some(bare)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected gs2 header and client-first message"));
        };
        if flag != "n" && flag != "y" {
            return Err(bad("channel binding is not supported"));
        }
        let authzid = match authzid {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(decode_name)
                    .ok_or(bad("invalid authzid"))?,
            ),
        };
        let mut attrs = bare.split(',');
        let user = attrs
            .next()
            .and_then(|a| a.strip_prefix("n="))
            .and_then(decode_name)
            .filter(|u| !u.is_empty())
            .ok_or(bad("expected n=<user>"))?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .filter(|n| valid_nonce(n))
            .ok_or(bad("expected r=<nonce>"))?;
        for extension in attrs {
            // Kafka's only extension is delegation-token auth, which Sluice does not issue;
            // unknown extensions are ignored as RFC 5802 asks.
            if extension.starts_with("m=") {
                return Err(bad("mandatory extension not supported"));
            }
            if extension == "tokenauth=true" {
                return Err(SaslError::InvalidCredentials(mechanism.mechanism()));
            }
        }
        if authzid.is_some_and(|a| a != user) {
            return Err(SaslError::InvalidCredentials(mechanism.mechanism()));
        }
        let credential = credentials
            .scram(&user, mechanism)
            .ok_or(SaslError::InvalidCredentials(mechanism.mechanism()))?;
        let mut random = [0u8; NONCE_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| SaslError::InvalidCredentials(mechanism.mechanism()))?;
        let nonce = format!("{client_nonce}{}", B64.encode(random));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let gs2_header = text[..text.len() - bare.len()].to_owned();
        let state = ServerState {
            mechanism,
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_owned(),
            nonce,
            server_first: server_first.clone(),
        };
        Ok((state, server_first.into_bytes()))
    }

    /// Reads client-final, checks the proof and answers with server-final.
    pub(crate) fn last(self, input: &[u8]) -> Result<Step, SaslError> {
        let mechanism = self.mechanism;
        let bad = |reason| malformed(mechanism, reason);
        let text = std::str::from_utf8(input).map_err(|_| bad("not UTF-8"))?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(bad("expected p=<proof>"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(bad("expected c=<channel binding>"))?;
        if B64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(bad("channel binding does not match the gs2 header"));
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(bad("expected r=<nonce>"))?;
        if nonce != self.nonce {
            return Err(SaslError::InvalidCredentials(mechanism.mechanism()));
        }
        let proof = B64.decode(proof).map_err(|_| bad("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = mechanism.mac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(SaslError::InvalidCredentials(mechanism.mechanism()));
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !constant_time_eq(&mechanism.hash(&client_key), &self.credential.stored_key) {
            return Err(SaslError::InvalidCredentials(mechanism.mechanism()));
        }
        let server_signature = mechanism.mac(&self.credential.server_key, auth_message.as_bytes());
        Ok(Step::Done {
            response: format!("v={}", B64.encode(server_signature)).into_bytes(),
            principal: self.user,
            expires_at: None,
        })
    }
}

/// A nonce is printable ASCII without `,` (RFC 5802).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Why a SCRAM client exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramClientError {
    /// The server's message did not follow the grammar.
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    /// The server's nonce does not extend ours, or its signature is wrong: it does not know
    /// the credential.
    #[error("the server failed to prove it knows the credential")]
    ServerNotVerified,
    /// The server's iteration count is outside 4096..=16384.
    #[error("the server asked for {0} iterations")]
    Iterations(i64),
    /// The random nonce could not be made.
    #[error("no randomness available")]
    Random,
}

/// The client side of a SCRAM exchange (the admin CLI and tests).
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: Vec<u8>,
    client_first_bare: String,
    nonce: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Starts an exchange; returns the client and its first message.
    pub fn start(
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<(ScramClient, Vec<u8>), ScramClientError> {
        let mut random = [0u8; NONCE_BYTES];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| ScramClientError::Random)?;
        let nonce = B64.encode(random);
        let client_first_bare = format!("n={},r={nonce}", encode_name(user));
        let first = format!("n,,{client_first_bare}").into_bytes();
        let client = ScramClient {
            mechanism,
            password: password.as_bytes().to_vec(),
            client_first_bare,
            nonce,
            expected_server_signature: None,
        };
        Ok((client, first))
    }

    /// Reads server-first and returns client-final.
    pub fn server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramClientError> {
        let text = std::str::from_utf8(message)
            .map_err(|_| ScramClientError::Malformed("server-first is not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramClientError::Malformed("expected r="))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramClientError::ServerNotVerified);
        }
        let salt = attrs
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .and_then(|s| B64.decode(s).ok())
            .ok_or(ScramClientError::Malformed("expected s=<base64 salt>"))?;
        let iterations: i64 = attrs
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .and_then(|i| i.parse().ok())
            .ok_or(ScramClientError::Malformed("expected i=<iterations>"))?;
        if !self.mechanism.valid_iterations(iterations) {
            return Err(ScramClientError::Iterations(iterations));
        }
        let iterations =
            u32::try_from(iterations).map_err(|_| ScramClientError::Iterations(iterations))?;
        let m = self.mechanism;
        let salted = salted_password(m, &self.password, &salt, iterations);
        let client_key = m.mac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = m.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.mac(&salted, b"Server Key");
        self.expected_server_signature = Some(m.mac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks server-final: the server proved it holds the credential.
    pub fn server_final(&self, message: &[u8]) -> Result<(), ScramClientError> {
        let signature = std::str::from_utf8(message)
            .ok()
            .and_then(|t| t.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ScramClientError::Malformed("expected v=<signature>"))?;
        match &self.expected_server_signature {
            Some(expected) if constant_time_eq(expected, &signature) => Ok(()),
            _ => Err(ScramClientError::ServerNotVerified),
        }
    }
}

#[cfg(test)]
mod tests;
