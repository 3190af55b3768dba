//! End-to-end TLS + ACL tests: a real broker with a PLAINTEXT and a required-auth SSL
//! listener, certificates generated here with rcgen, and a kafka-protocol client over rustls.

// Test code: a panic is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateTopicsRequest, DeleteAclsRequest, DescribeAclsRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::Compression;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sluice_broker::auth::AuthorizerConfig;
use sluice_broker::config::{BrokerConfig, ListenerConfig};
use sluice_broker::net::tls::{ClientAuth, TlsSettings};
use sluice_broker::{start, BrokerHandle};
use support::{batch, PLAIN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

struct Pki {
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "test-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki {
            ca: params.self_signed(&ca_key).unwrap(),
            ca_key,
        }
    }

    /// (cert PEM, key PEM) for `dn` (encoded in the given order) and `sans`.
    fn issue(&self, dn: &[(DnType, &str)], sans: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (ty, value) in dn {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Conn {
    io: Box<dyn Io>,
    correlation: i32,
}

impl Conn {
    async fn plain(addr: SocketAddr) -> Self {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        Conn {
            io: Box::new(tcp),
            correlation: 0,
        }
    }

    async fn tls(
        addr: SocketAddr,
        pki: &Pki,
        identity: Option<&(String, String)>,
    ) -> std::io::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        Ok(Conn {
            io: Box::new(tls),
            correlation: 0,
        })
    }

    /// Sends `req`; `None` if the broker closed the connection instead of answering.
    async fn try_request<R: Request>(&mut self, req: &R, version: i16) -> Option<R::Response> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("tls-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .unwrap();
        req.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(i32::try_from(body.len()).unwrap());
        frame.extend_from_slice(&body);
        self.io.write_all(&frame).await.ok()?;
        self.io.flush().await.ok()?;
        let size = self.io.read_i32().await.ok()?;
        let mut buf = vec![0u8; usize::try_from(size).ok()?];
        self.io.read_exact(&mut buf).await.ok()?;
        let mut buf = Bytes::from(buf);
        let header =
            ResponseHeader::decode(&mut buf, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        Some(R::Response::decode(&mut buf, version).unwrap())
    }

    async fn request<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        self.try_request(req, version)
            .await
            .expect("broker answered")
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> AclCreation {
    AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

const TOPIC: i8 = 2;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const WRITE: i8 = 4;
const READ: i8 = 3;
const ALLOW: i8 = 3;
const DENY: i8 = 2;

async fn produce(conn: &mut Conn, topic: &str) -> i16 {
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&[b"v"], PLAIN, 0, Compression::None)))])]);
    let resp = conn.request(&req, 9).await;
    resp.responses[0].partition_responses[0].error_code
}

async fn end_offset(conn: &mut Conn, topic: &str) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id((-1).into())
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let resp = conn.request(&req, 5).await;
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

async fn topic_names(conn: &mut Conn) -> Vec<String> {
    let resp = conn
        .request(&MetadataRequest::default().with_topics(None), 9)
        .await;
    resp.topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect()
}

struct Setup {
    pki: Pki,
    dir: tempfile::TempDir,
    config: BrokerConfig,
}

fn setup(rules: Option<&str>) -> Setup {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.issue(&[(DnType::CommonName, "broker")], &["localhost"]);
    write(dir.path(), "server.pem", &cert);
    write(dir.path(), "server.key", &key);
    write(dir.path(), "ca.pem", &pki.ca.pem());
    let config = BrokerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("data"),
        listeners: vec![ListenerConfig {
            name: "SSL".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised: None,
            tls: Some(TlsSettings {
                cert: dir.path().join("server.pem"),
                key: dir.path().join("server.key"),
                ca: Some(dir.path().join("ca.pem")),
                client_auth: ClientAuth::Required,
            }),
            sasl: false,
        }],
        authorizer: Some(AuthorizerConfig {
            super_users: vec!["User:CN=admin".into()],
            allow_everyone_if_no_acl_found: false,
        }),
        ssl_principal_mapping_rules: rules.map(str::to_owned),
        ..BrokerConfig::default()
    };
    Setup { pki, dir, config }
}

fn write(dir: &Path, name: &str, contents: &str) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn ssl(handle: &BrokerHandle) -> SocketAddr {
    handle.listener_addr("SSL").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_enforced_per_certificate_identity_and_survive_restart() {
    let setup = setup(None);
    let handle = start(setup.config.clone()).await.unwrap();
    let admin_id = setup.pki.issue(&[(DnType::CommonName, "admin")], &[]);
    let orders_id = setup.pki.issue(&[(DnType::CommonName, "orders-svc")], &[]);
    let billing_id = setup.pki.issue(&[(DnType::CommonName, "billing-svc")], &[]);

    let mut admin = Conn::tls(ssl(&handle), &setup.pki, Some(&admin_id))
        .await
        .unwrap();
    let created = admin
        .request(
            &CreateAclsRequest::default().with_creations(vec![
                acl(TOPIC, "orders", LITERAL, "User:CN=orders-svc", WRITE, ALLOW),
                acl(
                    TOPIC,
                    "orders.",
                    PREFIXED,
                    "User:CN=orders-svc",
                    WRITE,
                    ALLOW,
                ),
                acl(
                    TOPIC,
                    "orders.secret",
                    LITERAL,
                    "User:CN=orders-svc",
                    WRITE,
                    DENY,
                ),
                acl(
                    TOPIC,
                    "billing",
                    LITERAL,
                    "User:CN=billing-svc",
                    READ,
                    ALLOW,
                ),
                acl(1, "x", LITERAL, "User:CN=a", READ, ALLOW),
                acl(TOPIC, "", LITERAL, "User:CN=a", READ, ALLOW),
            ]),
            1,
        )
        .await;
    let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
    let invalid = ResponseError::InvalidRequest.code();
    assert_eq!(codes, vec![0, 0, 0, 0, invalid, invalid]);
    for topic in ["orders", "orders.eu", "orders.secret", "billing"] {
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![
                kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_num_partitions(1)
                    .with_replication_factor(1),
            ]);
        assert_eq!(admin.request(&req, 5).await.topics[0].error_code, 0);
    }

    let mut orders = Conn::tls(ssl(&handle), &setup.pki, Some(&orders_id))
        .await
        .unwrap();
    assert_eq!(produce(&mut orders, "orders").await, 0);
    assert_eq!(produce(&mut orders, "orders.eu").await, 0, "PREFIXED ACL");
    let denied = ResponseError::TopicAuthorizationFailed.code();
    assert_eq!(
        produce(&mut orders, "orders.secret").await,
        denied,
        "DENY beats ALLOW"
    );

    let mut billing = Conn::tls(ssl(&handle), &setup.pki, Some(&billing_id))
        .await
        .unwrap();
    let before = end_offset(&mut admin, "orders").await;
    assert_eq!(produce(&mut billing, "orders").await, denied);
    assert_eq!(
        end_offset(&mut admin, "orders").await,
        before,
        "nothing appended"
    );
    assert_eq!(topic_names(&mut billing).await, vec!["billing"]);
    let describe = billing
        .request(
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
            1,
        )
        .await;
    assert_eq!(
        describe.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );

    // The plaintext listener is anonymous: no way around the ACLs.
    let mut anonymous = Conn::plain(handle.local_addr()).await;
    assert_eq!(produce(&mut anonymous, "orders").await, denied);
    assert!(topic_names(&mut anonymous).await.is_empty());
    let specific = anonymous
        .request(
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(s("orders"))))
            ])),
            9,
        )
        .await;
    assert_eq!(specific.topics[0].error_code, denied);

    handle.shutdown().await.unwrap();
    let handle = start(setup.config.clone()).await.unwrap();
    let mut orders = Conn::tls(ssl(&handle), &setup.pki, Some(&orders_id))
        .await
        .unwrap();
    assert_eq!(
        produce(&mut orders, "orders").await,
        0,
        "ACLs survive a restart"
    );
    let mut admin = Conn::tls(ssl(&handle), &setup.pki, Some(&admin_id))
        .await
        .unwrap();
    let deleted = admin
        .request(
            &DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(Some(s("orders.eu")))
                .with_pattern_type_filter(2)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)]),
            1,
        )
        .await;
    let result = &deleted.filter_results[0];
    assert_eq!(result.error_code, 0);
    let mut names: Vec<String> = result
        .matching_acls
        .iter()
        .map(|m| m.resource_name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["orders."],
        "MATCH on orders.eu selects only the applicable prefix"
    );
    assert_eq!(produce(&mut orders, "orders.eu").await, denied);
    assert_eq!(produce(&mut orders, "orders").await, 0);
    handle.shutdown().await.unwrap();
    drop(setup.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refuses_missing_or_foreign_certificates_and_rules_map_subjects() {
    let setup = setup(Some("RULE:^CN=([^,]+),OU=prod$/$1/L,DEFAULT"));
    let handle = start(setup.config.clone()).await.unwrap();
    // OU first in encoded order prints as CN=...,OU=prod (RFC 2253 reverses).
    let mapped = setup.pki.issue(
        &[
            (DnType::OrganizationalUnitName, "prod"),
            (DnType::CommonName, "Orders-Svc"),
        ],
        &[],
    );
    let mut admin = Conn::tls(
        ssl(&handle),
        &setup.pki,
        Some(&setup.pki.issue(&[(DnType::CommonName, "admin")], &[])),
    )
    .await
    .unwrap();
    let created = admin
        .request(
            &CreateAclsRequest::default().with_creations(vec![acl(
                TOPIC,
                "orders",
                LITERAL,
                "User:orders-svc",
                WRITE,
                ALLOW,
            )]),
            1,
        )
        .await;
    assert_eq!(created.results[0].error_code, 0);
    // Write alone does not allow auto-creating the topic (Create does): the admin creates it.
    let mut orders = Conn::tls(ssl(&handle), &setup.pki, Some(&mapped))
        .await
        .unwrap();
    assert_eq!(
        produce(&mut orders, "orders").await,
        ResponseError::UnknownTopicOrPartition.code(),
        "Write without Create must not auto-create"
    );
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s("orders")))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    assert_eq!(admin.request(&req, 5).await.topics[0].error_code, 0);
    let mut orders = Conn::tls(ssl(&handle), &setup.pki, Some(&mapped))
        .await
        .unwrap();
    assert_eq!(
        produce(&mut orders, "orders").await,
        0,
        "mapped principal is User:orders-svc"
    );

    let refused = |conn: std::io::Result<Conn>| async move {
        match conn {
            Err(_) => true,
            // TLS 1.3 reports a refused client certificate on the first read.
            Ok(mut c) => c
                .try_request(&MetadataRequest::default(), 9)
                .await
                .is_none(),
        }
    };
    assert!(
        refused(Conn::tls(ssl(&handle), &setup.pki, None).await).await,
        "no certificate"
    );
    let other = Pki::new();
    let foreign = other.issue(&[(DnType::CommonName, "orders-svc")], &[]);
    assert!(
        refused(Conn::tls(ssl(&handle), &setup.pki, Some(&foreign)).await).await,
        "other CA"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn acl_apis_report_security_disabled_without_an_authorizer() {
    let broker = support::TestBroker::start().await;
    let mut conn = Conn::plain(broker.addr).await;
    let created = conn
        .request(
            &CreateAclsRequest::default()
                .with_creations(vec![acl(TOPIC, "t", LITERAL, "User:a", READ, ALLOW)]),
            1,
        )
        .await;
    assert_eq!(
        created.results[0].error_code,
        ResponseError::SecurityDisabled.code()
    );
    // And every request is allowed, as before ACLs existed.
    assert_eq!(produce(&mut conn, "open-topic").await, 0);
}
