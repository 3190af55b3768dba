//! The certificate authority: creates or loads a CA and signs client certificates.
//!
//! A CSR only proves possession of a private key. Everything it asks for (subject, SANs,
//! extensions, CA flag) is ignored: the certificate's subject is `CN=<service id>` taken from the
//! verified identity token, so the principal the broker sees is the authenticated service.

mod csr;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};

use crate::files::{write_atomic, FileMode};
use crate::service::{ReservedServices, ServiceId};

pub use csr::CsrPublicKey;

/// Subject of the CA certificate KSS creates.
const CA_COMMON_NAME: &str = "Sluice KSS CA";
/// Subject of KSS's own HTTPS certificate: capitals and a space, so it can never be a service id
/// and its principal never one that ACLs grant.
const SERVER_COMMON_NAME: &str = "Sluice KSS server";
/// How long a created CA certificate is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far not-before is backdated, so clients with a slightly slow clock accept new certificates.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Why the CA could not be loaded or could not issue a certificate.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA file could not be read or written.
    #[error("CA file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA files exist but cannot be used.
    #[error(
        "the CA in {dir} is unusable: {detail}; fix or remove ca.pem and ca.key to create a new CA"
    )]
    BadCa {
        /// The CA directory.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The CSR is malformed or its signature does not verify.
    #[error("invalid CSR: {0}")]
    BadCsr(String),
    /// The service id is reserved (a super user or a configured reserved name).
    #[error("service id {0} is reserved (a cluster super user or --reserved-service); KSS never issues a certificate for it")]
    Reserved(ServiceId),
    /// A server name for KSS's own certificate is neither an IP address nor a DNS name.
    #[error("{0:?} is not a DNS name or IP address usable in KSS's server certificate")]
    BadServerName(String),
    /// Signing failed.
    #[error("could not sign the certificate: {0}")]
    Signing(String),
}

/// Shortest lifetime issued (short lifetimes are for tests of renewal).
pub const MIN_LIFETIME: Duration = Duration::from_secs(10);

/// Lifetime policy for issued certificates.
#[derive(Debug, Clone, Copy)]
pub struct LifetimePolicy {
    /// Lifetime when the caller asks for none.
    pub default: Duration,
    /// Longest lifetime ever issued (longer requests are capped).
    pub max: Duration,
}

impl Default for LifetimePolicy {
    fn default() -> Self {
        LifetimePolicy {
            default: Duration::from_secs(24 * 3600),
            max: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A certificate just issued.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Its serial number, lowercase hex.
    pub serial: String,
    /// First second it is valid.
    pub not_before: SystemTime,
    /// Last second it is valid.
    pub not_after: SystemTime,
}

/// KSS's own HTTPS certificate and its key, which never touches the disk.
pub struct ServerCertificate {
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Its private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// The CA: its certificate (served to clients and brokers) and signing key.
pub struct CertificateAuthority {
    issuer: rcgen::Certificate,
    key: KeyPair,
    ca_pem: String,
    policy: LifetimePolicy,
    reserved: ReservedServices,
    rng: SystemRandom,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_owned(),
        source,
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// True for a hostname: dot-separated labels of 1 to 63 letters, digits and inner hyphens.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn raw_subject(cert_der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
    Ok(cert.tbs_certificate.subject.as_raw().to_vec())
}

impl CertificateAuthority {
    /// Loads the CA from `dir/ca.pem` and `dir/ca.key`, or creates both (key mode 0600) when
    /// neither exists.
    pub fn load_or_create(dir: &Path, policy: LifetimePolicy) -> Result<Self, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let bad = |detail: String| CaError::BadCa {
            dir: dir.to_owned(),
            detail,
        };
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => {
                std::fs::create_dir_all(dir).map_err(io(dir))?;
                let key = KeyPair::generate().map_err(|e| CaError::Signing(e.to_string()))?;
                let mut params = ca_params();
                let now = time::OffsetDateTime::now_utc();
                params.not_before = now - BACKDATE;
                params.not_after = now + CA_LIFETIME;
                let cert = params
                    .self_signed(&key)
                    .map_err(|e| CaError::Signing(e.to_string()))?;
                write_atomic(&key_path, key.serialize_pem().as_bytes(), FileMode::Private)
                    .map_err(io(&key_path))?;
                write_atomic(&cert_path, cert.pem().as_bytes(), FileMode::Shared)
                    .map_err(io(&cert_path))?;
                tracing::info!(dir = %dir.display(), "created a new KSS certificate authority");
            }
            (true, true) => {}
            (true, false) => return Err(bad("ca.key is missing".into())),
            (false, true) => return Err(bad("ca.pem is missing".into())),
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path)
                .map_err(io(&key_path))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %key_path.display(), "the CA key is readable by others; setting mode 0600");
                std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&key_path))?;
            }
        }
        let ca_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
        let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(format!("ca.key: {e}")))?;
        // The issuer only contributes its subject and key identifier to what it signs; both are
        // derived the same way on every load, and checked against the certificate on disk.
        let issuer = ca_params()
            .self_signed(&key)
            .map_err(|e| CaError::Signing(e.to_string()))?;
        let (_, on_disk) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())
            .map_err(|e| bad(format!("ca.pem: {e}")))?;
        let on_disk_subject =
            raw_subject(&on_disk.contents).map_err(|e| bad(format!("ca.pem: {e}")))?;
        let (_, disk_cert) = x509_parser::parse_x509_certificate(&on_disk.contents)
            .map_err(|e| bad(format!("ca.pem: {e}")))?;
        if on_disk_subject != raw_subject(issuer.der()).map_err(bad)?
            || disk_cert.public_key().raw != key.public_key_der().as_slice()
        {
            return Err(bad(
                "ca.pem and ca.key do not belong together (or ca.pem was not created by KSS)"
                    .into(),
            ));
        }
        Ok(CertificateAuthority {
            issuer,
            key,
            ca_pem,
            policy,
            reserved: ReservedServices::default(),
            rng: SystemRandom::new(),
        })
    }

    /// Refuses certificates for `reserved` from now on.
    pub fn with_reserved(mut self, reserved: ReservedServices) -> Self {
        self.reserved = reserved;
        self
    }

    /// The CA certificate, PEM: what brokers and clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The lifetime policy.
    pub fn policy(&self) -> LifetimePolicy {
        self.policy
    }

    /// Issues a client certificate for `service` to the key that signed `csr_pem`.
    /// `lifetime` is capped at the policy maximum; `None` means the default. A reserved service
    /// is refused before the CSR is even read.
    pub fn issue(
        &self,
        csr_pem: &str,
        service: &ServiceId,
        lifetime: Option<Duration>,
    ) -> Result<IssuedCertificate, CaError> {
        if self.reserved.contains(service) {
            return Err(CaError::Reserved(service.clone()));
        }
        let public_key = CsrPublicKey::from_verified_pem(csr_pem)?;
        let lifetime = lifetime
            .unwrap_or(self.policy.default)
            .min(self.policy.max)
            .max(MIN_LIFETIME);
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, service.as_str(), &public_key, lifetime)
    }

    /// Issues KSS's own HTTPS certificate for `names` (DNS names or IP addresses) to a fresh key,
    /// valid for `lifetime`.
    pub fn issue_server_certificate(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<ServerCertificate, CaError> {
        let mut params = CertificateParams::default();
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) if is_dns_name(name) => SanType::DnsName(
                    name.as_str()
                        .try_into()
                        .map_err(|_| CaError::BadServerName(name.clone()))?,
                ),
                Err(_) => return Err(CaError::BadServerName(name.clone())),
            };
            params.subject_alt_names.push(san);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| CaError::Signing(e.to_string()))?;
        let issued = self.sign(params, SERVER_COMMON_NAME, &key, lifetime)?;
        let (_, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes())
            .map_err(|e| CaError::Signing(e.to_string()))?;
        Ok(ServerCertificate {
            certificate_der: pem.contents,
            key_der: key.serialize_der(),
        })
    }

    /// Signs an end-entity certificate `CN=<common_name>` for `public_key`: `params` brings the
    /// extended key usage (and SANs), this adds everything every KSS certificate shares.
    fn sign(
        &self,
        mut params: CertificateParams,
        common_name: &str,
        public_key: &impl PublicKeyData,
        lifetime: Duration,
    ) -> Result<IssuedCertificate, CaError> {
        let mut serial = [0u8; 16];
        self.rng
            .fill(&mut serial)
            .map_err(|_| CaError::Signing("the system random generator failed".into()))?;
        // A positive INTEGER of exactly 128 random bits.
        serial[0] &= 0x7f;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        // No basicConstraints at all marks an end-entity certificate: rcgen's ExplicitNoCa
        // encodes the DEFAULT cA=FALSE, which strict DER parsers reject.
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
        let not_after = now.checked_add(lifetime).ok_or_else(|| {
            CaError::Signing(format!(
                "a lifetime of {} s is out of range; lower --max-cert-lifetime-secs",
                lifetime.as_secs()
            ))
        })?;
        params.not_before = time::OffsetDateTime::from(not_before);
        params.not_after = time::OffsetDateTime::from(not_after);
        let cert = params
            .signed_by(public_key, &self.issuer, &self.key)
            .map_err(|e| CaError::Signing(e.to_string()))?;
        Ok(IssuedCertificate {
            certificate_pem: cert.pem(),
            serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
            not_before,
            not_after,
        })
    }
}

#[cfg(test)]
mod tests;
