//! The files the application reads: key, certificate, CA bundle and ready-to-use client
//! properties, each replaced atomically through the one helper KSS uses too.

use std::path::Path;

use sluice_kss::api::types::CertificateResponse;
use sluice_kss::files::{write_atomic, FileMode};

use crate::SidecarError;

/// Writes the credentials into `dir`, each file replaced atomically. The key is written before
/// the certificate, so a reader that sees the new certificate also finds its key.
pub fn write_credentials(
    dir: &Path,
    key_pem: &str,
    issued: &CertificateResponse,
    bootstrap: Option<&str>,
) -> Result<(), SidecarError> {
    std::fs::create_dir_all(dir).map_err(|source| SidecarError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let write = |name: &str, contents: &str, private: bool| {
        let path = dir.join(name);
        let mode = if private {
            FileMode::Private
        } else {
            FileMode::Shared
        };
        write_atomic(&path, contents.as_bytes(), mode)
            .map_err(|source| SidecarError::Write { path, source })
    };
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    write("ca.pem", &issued.ca, false)?;
    write("key.pem", key_pem, true)?;
    write("cert.pem", &issued.certificate, false)?;
    // Java's PEM keystore wants the key and its chain in one file.
    write(
        "keystore.pem",
        &format!("{key_pem}{}", issued.certificate),
        true,
    )?;
    write(
        "client.properties",
        &librdkafka_properties(&abs, bootstrap),
        false,
    )?;
    write(
        "client-java.properties",
        &java_properties(&abs, bootstrap),
        false,
    )?;
    Ok(())
}

fn bootstrap_line(bootstrap: Option<&str>) -> String {
    bootstrap
        .map(|b| format!("bootstrap.servers={b}\n"))
        .unwrap_or_default()
}

/// librdkafka settings (confluent-kafka clients, kcat `-F`, `sluice -X`).
pub fn librdkafka_properties(dir: &Path, bootstrap: Option<&str>) -> String {
    format!(
        "# Written by sluice sidecar: librdkafka (confluent-kafka, kcat -F) settings.\n{}security.protocol=SSL\nssl.ca.location={}\nssl.certificate.location={}\nssl.key.location={}\n",
        bootstrap_line(bootstrap),
        dir.join("ca.pem").display(),
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
    )
}

/// Java client settings (PEM key and trust stores, Kafka 2.7+).
pub fn java_properties(dir: &Path, bootstrap: Option<&str>) -> String {
    format!(
        "# Written by sluice sidecar: Java client settings.\n{}security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location={}\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
        bootstrap_line(bootstrap),
        dir.join("keystore.pem").display(),
        dir.join("ca.pem").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_written_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let issued = CertificateResponse {
            service: "s".into(),
            certificate: "CERT\n".into(),
            ca: "CA\n".into(),
            serial: "01".into(),
            not_before: 0,
            not_after: 1,
        };
        write_credentials(dir.path(), "KEY\n", &issued, Some("h:9093")).unwrap();
        let props = std::fs::read_to_string(dir.path().join("client.properties")).unwrap();
        assert!(props.contains("bootstrap.servers=h:9093\n"));
        assert!(props.contains(&format!(
            "ssl.key.location={}",
            dir.path().join("key.pem").display()
        )));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keystore.pem")).unwrap(),
            "KEY\nCERT\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |n: &str| {
                std::fs::metadata(dir.path().join(n))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("key.pem"), 0o600);
            assert_eq!(mode("keystore.pem"), 0o600);
        }
    }
}
