//! A minimal, panic-free DER reader: just enough to find a certificate's subject and walk its
//! RDNs. Certificates arrive from the network, so every length is checked before slicing.

use super::principal::PrincipalError;

/// Universal tag of a SEQUENCE (constructed).
pub(super) const TAG_SEQUENCE: u8 = 0x30;
/// Universal tag of a SET (constructed).
pub(super) const TAG_SET: u8 = 0x31;
/// Universal tag of an OBJECT IDENTIFIER.
pub(super) const TAG_OID: u8 = 0x06;

/// One decoded tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tlv<'a> {
    /// The identifier octet (only low-tag-number form is supported).
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// The whole encoding: identifier, length and content.
    pub raw: &'a [u8],
}

/// Reads consecutive DER elements from a byte slice.
#[derive(Debug, Clone)]
pub(super) struct DerReader<'a> {
    rest: &'a [u8],
}

impl<'a> DerReader<'a> {
    /// A reader over `bytes`.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        DerReader { rest: bytes }
    }

    /// True when every element has been read.
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, or an error if the encoding is truncated or unsupported.
    pub(super) fn next_tlv(&mut self) -> Result<Tlv<'a>, PrincipalError> {
        let input = self.rest;
        let (&tag, after_tag) = input.split_first().ok_or(malformed("truncated element"))?;
        if tag & 0x1f == 0x1f {
            return Err(malformed(
                "high tag numbers are not used in certificate names",
            ));
        }
        let (&first, mut after_len) = after_tag.split_first().ok_or(malformed("missing length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(malformed("unsupported length encoding"));
            }
            let (len_bytes, rest) = split(after_len, count)?;
            after_len = rest;
            len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (content, rest) = split(after_len, len)?;
        let header_len = input.len() - after_len.len();
        let (raw, _) = split(input, header_len + len)?;
        self.rest = rest;
        Ok(Tlv { tag, content, raw })
    }

    /// The next element, which must carry `tag`.
    pub(super) fn expect(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Tlv<'a>, PrincipalError> {
        let tlv = self.next_tlv()?;
        if tlv.tag == tag {
            Ok(tlv)
        } else {
            Err(malformed(what))
        }
    }
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), PrincipalError> {
    if at <= bytes.len() {
        Ok(bytes.split_at(at))
    } else {
        Err(malformed("element longer than its container"))
    }
}

fn malformed(reason: &'static str) -> PrincipalError {
    PrincipalError::MalformedCertificate(reason)
}

/// The DER encoding of the subject `Name` of an X.509 certificate.
pub(super) fn certificate_subject(cert: &[u8]) -> Result<&[u8], PrincipalError> {
    let certificate = DerReader::new(cert).expect(TAG_SEQUENCE, "certificate is not a SEQUENCE")?;
    let tbs = DerReader::new(certificate.content)
        .expect(TAG_SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut fields = DerReader::new(tbs.content);
    let mut field = fields.next_tlv()?;
    // [0] EXPLICIT version is optional (absent means v1).
    if field.tag == 0xa0 {
        field = fields.next_tlv()?;
    }
    let _serial = field;
    let _signature = fields.expect(TAG_SEQUENCE, "signature algorithm is not a SEQUENCE")?;
    let _issuer = fields.expect(TAG_SEQUENCE, "issuer is not a SEQUENCE")?;
    let _validity = fields.expect(TAG_SEQUENCE, "validity is not a SEQUENCE")?;
    let subject = fields.expect(TAG_SEQUENCE, "subject is not a SEQUENCE")?;
    Ok(subject.raw)
}

/// Dotted-decimal form of an OBJECT IDENTIFIER's content octets, written into `out`.
pub(super) fn write_oid(content: &[u8], out: &mut String) -> Result<(), PrincipalError> {
    use std::fmt::Write;
    let mut arcs = Vec::new();
    let mut value: u128 = 0;
    let mut in_arc = false;
    for &b in content {
        if !in_arc && b == 0x80 {
            return Err(malformed("OID arc with a leading zero octet"));
        }
        value = value
            .checked_mul(128)
            .and_then(|v| v.checked_add(u128::from(b & 0x7f)))
            .ok_or(malformed("OID arc too large"))?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            arcs.push(value);
            value = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return Err(malformed("truncated OID"));
    }
    let first = arcs.first().copied().unwrap_or(0);
    let (x, y) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let _ = write!(out, "{x}.{y}");
    for arc in arcs.iter().skip(1) {
        let _ = write!(out, ".{arc}");
    }
    Ok(())
}
