//! Principals as Kafka derives them from TLS client certificates.
//!
//! Kafka's `DefaultKafkaPrincipalBuilder` takes the peer certificate's subject as Java's
//! `X500Principal.getName()` (RFC 2253) and runs it through `ssl.principal.mapping.rules`.
//! ACLs written for Apache Kafka name principals in exactly that form, so the formatter below
//! reproduces the JDK's output byte for byte: RDNs in reverse encoded order joined by `,`,
//! multi-valued RDNs joined by `+` in encoded order, only the RFC 2253 keywords (`CN`, `C`, `L`,
//! `ST`, `O`, `OU`, `STREET`, `DC`, `UID`) by name, every other attribute as its dotted OID with
//! a `#`-hex value, and the JDK's escaping (`,=+<>#;"\` anywhere, leading/trailing spaces).

use std::fmt;

use regex::{Captures, Regex};

use super::der::{self, DerReader, TAG_OID, TAG_SEQUENCE, TAG_SET};

/// The principal of a client that presented no certificate (or connected in plaintext).
pub const ANONYMOUS: &str = "ANONYMOUS";
/// The principal type of every principal this broker builds.
pub const USER_TYPE: &str = "User";

/// Why a certificate could not be turned into a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    /// The certificate (or its subject) is not valid DER.
    #[error("the client certificate is malformed: {0}")]
    MalformedCertificate(&'static str),
    /// No `ssl.principal.mapping.rules` rule matched the subject.
    #[error("no ssl.principal.mapping.rules rule matches the subject '{0}'; add a rule for it or end the rules with DEFAULT")]
    NoMatchingRule(String),
    /// The certificate names nobody: an empty subject (or one a mapping rule maps to nothing).
    #[error("the client certificate has an empty subject; issue certificates with a subject such as CN=<service>")]
    EmptySubject,
}

/// A `Type:name` principal such as `User:CN=orders-svc`, as ACLs and `super.users` name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    text: String,
    colon: usize,
}

impl KafkaPrincipal {
    /// A `User:` principal with the given name.
    pub fn user(name: &str) -> Self {
        KafkaPrincipal {
            text: format!("{USER_TYPE}:{name}"),
            colon: USER_TYPE.len(),
        }
    }

    /// `User:ANONYMOUS`, the principal of unauthenticated clients.
    pub fn anonymous() -> Self {
        KafkaPrincipal::user(ANONYMOUS)
    }

    /// Parses `Type:name`; the type is everything before the first `:`.
    pub fn parse(text: &str) -> Option<Self> {
        let colon = text.find(':')?;
        Some(KafkaPrincipal {
            text: text.to_owned(),
            colon,
        })
    }

    /// The principal type (`User`).
    pub fn principal_type(&self) -> &str {
        self.text.get(..self.colon).unwrap_or_default()
    }

    /// The principal name (after the first `:`).
    pub fn name(&self) -> &str {
        self.text.get(self.colon + 1..).unwrap_or_default()
    }

    /// The whole `Type:name` string.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The shared `User:ANONYMOUS` (so plaintext connections allocate nothing for it).
pub fn anonymous_shared() -> std::sync::Arc<KafkaPrincipal> {
    static ANONYMOUS_PRINCIPAL: std::sync::LazyLock<std::sync::Arc<KafkaPrincipal>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new(KafkaPrincipal::anonymous()));
    ANONYMOUS_PRINCIPAL.clone()
}

/// The principal of a client that presented `cert` (DER), after the mapping rules.
pub fn principal_from_certificate(
    cert: &[u8],
    mapper: &PrincipalMapper,
) -> Result<KafkaPrincipal, PrincipalError> {
    let subject = rfc2253_subject(cert)?;
    if subject.is_empty() {
        return Err(PrincipalError::EmptySubject);
    }
    let name = mapper
        .map(&subject)
        .ok_or_else(|| PrincipalError::NoMatchingRule(subject.clone()))?;
    if name.is_empty() {
        return Err(PrincipalError::EmptySubject);
    }
    Ok(KafkaPrincipal::user(&name))
}

/// The subject of the DER certificate `cert` as an RFC 2253 string, exactly as the JDK's
/// `X500Principal.getName()` prints it.
pub fn rfc2253_subject(cert: &[u8]) -> Result<String, PrincipalError> {
    format_rfc2253(der::certificate_subject(cert)?)
}

/// Formats a DER-encoded X.501 `Name` (the whole SEQUENCE) as RFC 2253.
pub fn format_rfc2253(name: &[u8]) -> Result<String, PrincipalError> {
    let mut outer = DerReader::new(name);
    let sequence = outer.expect(TAG_SEQUENCE, "name is not a SEQUENCE")?;
    if !outer.is_empty() {
        return Err(PrincipalError::MalformedCertificate(
            "trailing bytes after the name",
        ));
    }
    let mut rdns = Vec::new();
    let mut reader = DerReader::new(sequence.content);
    while !reader.is_empty() {
        rdns.push(reader.expect(TAG_SET, "RDN is not a SET")?);
    }
    let mut out = String::with_capacity(name.len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut avas = DerReader::new(rdn.content);
        let mut first = true;
        while !avas.is_empty() {
            if !first {
                out.push('+');
            }
            first = false;
            let ava = avas.expect(TAG_SEQUENCE, "attribute is not a SEQUENCE")?;
            write_ava(ava.content, &mut out)?;
        }
        if first {
            return Err(PrincipalError::MalformedCertificate("empty RDN"));
        }
    }
    Ok(out)
}

/// RFC 2253 keywords by OID content octets (the JDK prints every other type as a dotted OID).
const KEYWORDS: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x09], "STREET"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// Writes one `type=value` AttributeTypeAndValue.
fn write_ava(content: &[u8], out: &mut String) -> Result<(), PrincipalError> {
    let mut fields = DerReader::new(content);
    let oid = fields.expect(TAG_OID, "attribute type is not an OID")?;
    let value = fields.next_tlv()?;
    if !fields.is_empty() {
        return Err(PrincipalError::MalformedCertificate(
            "trailing bytes in an attribute",
        ));
    }
    let keyword = KEYWORDS
        .iter()
        .find(|(k, _)| *k == oid.content)
        .map(|(_, name)| *name);
    match keyword {
        Some(keyword) => out.push_str(keyword),
        None => der::write_oid(oid.content, out)?,
    }
    out.push('=');
    match keyword.and_then(|_| directory_string(value.tag, value.content)) {
        Some(text) => escape_value(&text, out),
        None => {
            out.push('#');
            for b in value.raw {
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    Ok(())
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The text of a string-typed attribute value, or `None` for types the JDK prints as hex.
///
/// The JDK (`AVA.toRFC2253String`) reads the content octets of every string type it prints as
/// UTF-8, whatever the type's own encoding: a BMPString `admin` (UTF-16BE) comes out as
/// `\00a\00d\00m\00i\00n`, not `admin`, so it can never pass for a UTF8String `CN=admin`.
fn directory_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, T61String, IA5String, GeneralString, BMPString.
        0x0c | 0x13 | 0x14 | 0x16 | 0x1b | 0x1e => {
            Some(String::from_utf8_lossy(content).into_owned())
        }
        _ => None,
    }
}

/// Appends `value` with the JDK's RFC 2253 escaping.
fn escape_value(value: &str, out: &mut String) {
    const ESCAPED: &str = ",=+<>#;\"\\";
    let is_blank = |c: char| c == ' ' || c == '\r';
    let lead = value.chars().take_while(|&c| is_blank(c)).count();
    let total = value.chars().count();
    let trail = value.chars().rev().take_while(|&c| is_blank(c)).count();
    for (i, c) in value.chars().enumerate() {
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if ESCAPED.contains(c) || i < lead || i >= total - trail {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `ssl.principal.mapping.rules`: turns an RFC 2253 subject into a principal name.
///
/// Rules are `DEFAULT` (the subject unchanged) or `RULE:pattern/replacement/[LU]`, separated by
/// commas; the first rule whose pattern matches the whole subject wins. Patterns use Rust
/// `regex` syntax, which agrees with Java's for the patterns such rules use (no
/// backreferences or lookaround); replacements use Java's `$1` / `\$` syntax.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Debug, Clone)]
enum MappingRule {
    Default,
    Rule {
        whole: Regex,
        find: Regex,
        replacement: Vec<Piece>,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Group(usize),
    Named(String),
}

/// Why `ssl.principal.mapping.rules` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingRuleError {
    /// A rule is neither `DEFAULT` nor `RULE:pattern/replacement/[LU]`.
    #[error("invalid ssl.principal.mapping.rules rule '{0}': expected DEFAULT or RULE:pattern/replacement/[LU]")]
    Syntax(String),
    /// The pattern is not a valid regular expression.
    #[error("invalid pattern in ssl.principal.mapping.rules rule '{rule}': {reason}")]
    Pattern {
        /// The rule.
        rule: String,
        /// What the regex compiler reported.
        reason: String,
    },
    /// The replacement refers to a group that does not exist or is malformed.
    #[error("invalid replacement in ssl.principal.mapping.rules rule '{rule}': {reason}")]
    Replacement {
        /// The rule.
        rule: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Kafka's `SslPrincipalMapper.RULE_PATTERN` with `\s` spelled as Java's ASCII whitespace.
const RULE_PATTERN: &str = r"(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?).*?|(.*?)";
const JAVA_SPACE: &str = r"[ \t\n\x0B\x0C\r]";

impl Default for PrincipalMapper {
    /// The Kafka default, `DEFAULT`: the subject string is the principal name.
    fn default() -> Self {
        PrincipalMapper {
            rules: vec![MappingRule::Default],
        }
    }
}

impl PrincipalMapper {
    /// Parses a rules string the way Kafka does (`DEFAULT` when unset).
    pub fn parse(rules: &str) -> Result<Self, MappingRuleError> {
        let splitter = Regex::new(&format!(
            "{JAVA_SPACE}*({RULE_PATTERN}){JAVA_SPACE}*(,{JAVA_SPACE}*|$)"
        ))
        .map_err(|e| MappingRuleError::Pattern {
            rule: String::new(),
            reason: e.to_string(),
        })?;
        let parser = Regex::new(&format!(r"\A(?:{RULE_PATTERN})")).map_err(|e| {
            MappingRuleError::Pattern {
                rule: String::new(),
                reason: e.to_string(),
            }
        })?;
        let trimmed = rules.trim_matches(|c: char| c <= ' ');
        let mut parsed = Vec::new();
        let mut texts = Vec::new();
        java_find_all(&splitter, trimmed, |caps| {
            texts.push(caps.get(1).map_or("", |m| m.as_str()).to_owned());
        });
        for text in texts {
            let Some(caps) = parser.captures(&text) else {
                return Err(MappingRuleError::Syntax(text));
            };
            if caps.get(0).map_or(0, |m| m.end()) != text.len() {
                return Err(MappingRuleError::Syntax(text));
            }
            if caps.get(1).is_some() {
                parsed.push(MappingRule::Default);
            } else if let (Some(pattern), Some(replacement)) = (caps.get(2), caps.get(3)) {
                let case = match caps.get(4).map(|m| m.as_str()) {
                    Some("L") => Case::Lower,
                    Some("U") => Case::Upper,
                    _ => Case::Keep,
                };
                parsed.push(compile_rule(
                    &text,
                    pattern.as_str(),
                    replacement.as_str(),
                    case,
                )?);
            }
            // Anything else is an empty rule, which Kafka ignores.
        }
        Ok(PrincipalMapper { rules: parsed })
    }

    /// The principal name for `subject`, or `None` when no rule matches (Kafka then refuses
    /// the client).
    pub fn map(&self, subject: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| rule.apply(subject))
    }
}

fn compile_rule(
    text: &str,
    pattern: &str,
    replacement: &str,
    case: Case,
) -> Result<MappingRule, MappingRuleError> {
    let pattern_error = |e: regex::Error| MappingRuleError::Pattern {
        rule: text.to_owned(),
        reason: e.to_string(),
    };
    let find = Regex::new(pattern).map_err(pattern_error)?;
    let whole = Regex::new(&format!(r"\A(?:{pattern})\z")).map_err(pattern_error)?;
    let groups = find.captures_len() - 1;
    let replacement =
        parse_replacement(replacement, groups).map_err(|reason| MappingRuleError::Replacement {
            rule: text.to_owned(),
            reason,
        })?;
    Ok(MappingRule::Rule {
        whole,
        find,
        replacement,
        case,
    })
}

/// Parses a Java `Matcher.replaceAll` replacement, with Kafka's tweak that a reference to a
/// group beyond the pattern's count is literal text.
fn parse_replacement(replacement: &str, groups: usize) -> Result<Vec<Piece>, &'static str> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut chars = replacement.chars().peekable();
    let flush = |literal: &mut String, pieces: &mut Vec<Piece>| {
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(literal)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => literal.push(chars.next().ok_or("a trailing '\\' escapes nothing")?),
            '$' => match chars.peek().copied() {
                Some('{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() => name.push(c),
                            _ => return Err("a named group reference must be ${name}"),
                        }
                    }
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Named(name));
                }
                Some(d) if d.is_ascii_digit() => {
                    let first = d.to_digit(10).map_or(0, |v| v as usize);
                    if first > groups {
                        if groups == 0 {
                            return Err("the pattern has no capturing group to refer to");
                        }
                        literal.push('$');
                        continue;
                    }
                    chars.next();
                    let mut group = first;
                    while let Some(next) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let candidate = group * 10 + next as usize;
                        if candidate > groups {
                            break;
                        }
                        group = candidate;
                        chars.next();
                    }
                    flush(&mut literal, &mut pieces);
                    pieces.push(Piece::Group(group));
                }
                _ => return Err("'$' must be followed by a group number or ${name}; write \\$ for a literal dollar"),
            },
            c => literal.push(c),
        }
    }
    flush(&mut literal, &mut pieces);
    Ok(pieces)
}

impl MappingRule {
    fn apply(&self, subject: &str) -> Option<String> {
        let MappingRule::Rule {
            whole,
            find,
            replacement,
            case,
        } = self
        else {
            return Some(subject.to_owned());
        };
        if !whole.is_match(subject) {
            return None;
        }
        // Java's replaceAll: every match of the pattern, not just the whole-subject one.
        let mut out = String::with_capacity(subject.len());
        let mut last = 0;
        java_find_all(find, subject, |caps| {
            let Some(m) = caps.get(0) else { return };
            out.push_str(subject.get(last..m.start()).unwrap_or_default());
            for piece in replacement {
                match piece {
                    Piece::Literal(text) => out.push_str(text),
                    Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
                    Piece::Named(name) => out.push_str(caps.name(name).map_or("", |m| m.as_str())),
                }
            }
            last = m.end();
        });
        out.push_str(subject.get(last..).unwrap_or_default());
        Some(match case {
            Case::Keep => out,
            Case::Lower => out.to_lowercase(),
            Case::Upper => out.to_uppercase(),
        })
    }
}

/// Calls `each` for every match the way Java's `Matcher.find()` loop reports them: after an
/// empty match the search resumes one character later, and an empty match right after a
/// non-empty one is still reported (Rust's iterators skip it).
fn java_find_all(re: &Regex, text: &str, mut each: impl FnMut(&Captures<'_>)) {
    let mut pos = 0;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        each(&caps);
        pos = if m.is_empty() {
            match text.get(m.end()..).and_then(|rest| rest.chars().next()) {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        } else {
            m.end()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// DER helpers for hand-built names (rcgen cannot emit multi-valued RDNs).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn ava(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        let mut content = tlv(0x06, oid);
        content.extend(tlv(tag, value));
        tlv(0x30, &content)
    }

    fn name(rdns: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let content: Vec<u8> = rdns
            .iter()
            .flat_map(|avas| tlv(0x31, &avas.concat()))
            .collect();
        tlv(0x30, &content)
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const OU: &[u8] = &[0x55, 0x04, 0x0b];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    #[test]
    fn rdns_are_reversed_and_multi_valued_rdns_joined_with_plus() {
        let der = name(&[
            vec![ava(O, 0x0c, b"Acme")],
            vec![ava(OU, 0x13, b"prod"), ava(CN, 0x0c, b"orders-svc")],
        ]);
        assert_eq!(
            format_rfc2253(&der).unwrap(),
            "OU=prod+CN=orders-svc,O=Acme"
        );
    }

    #[test]
    fn special_characters_are_escaped_like_the_jdk() {
        let der = name(&[vec![ava(CN, 0x0c, b" a,b+c=d<e>f#g;h\"i\\j ")]]);
        assert_eq!(
            format_rfc2253(&der).unwrap(),
            r#"CN=\ a\,b\+c\=d\<e\>f\#g\;h\"i\\j\ "#
        );
        let der = name(&[vec![ava(CN, 0x0c, "  zoë ".as_bytes())]]);
        assert_eq!(format_rfc2253(&der).unwrap(), "CN=\\ \\ zoë\\ ");
    }

    #[test]
    fn non_keyword_attributes_print_as_oid_and_hex() {
        let der = name(&[vec![ava(EMAIL, 0x16, b"a@b")], vec![ava(CN, 0x0c, b"x")]]);
        assert_eq!(
            format_rfc2253(&der).unwrap(),
            "CN=x,1.2.840.113549.1.9.1=#1603614062"
        );
    }

    #[test]
    fn bmp_strings_print_as_the_jdk_does_and_unknown_types_as_hex() {
        // The JDK reads BMPString octets as UTF-8: NULs escaped as \00, never plain `hi`.
        let der = name(&[
            vec![ava(CN, 0x1e, &[0, b'h', 0, b'i'])],
            vec![ava(OU, 0x02, &[5])],
        ]);
        assert_eq!(format_rfc2253(&der).unwrap(), "OU=#020105,CN=\\00h\\00i");
        // UniversalString is no string type to the JDK.
        let der = name(&[vec![ava(CN, 0x1c, &[0, 0, 0, b'a'])]]);
        assert_eq!(format_rfc2253(&der).unwrap(), "CN=#1c0400000061");
        // Invalid UTF-8 in a PrintableString becomes U+FFFD, as Java's decoder does.
        let der = name(&[vec![ava(CN, 0x13, &[b'a', 0xff])]]);
        assert_eq!(format_rfc2253(&der).unwrap(), "CN=a\u{fffd}");
    }

    #[test]
    fn malformed_names_are_errors() {
        assert!(format_rfc2253(&[]).is_err());
        assert!(format_rfc2253(&[0x30, 0x05, 0x31]).is_err());
        assert!(format_rfc2253(&name(&[vec![]])).is_err());
        assert!(rfc2253_subject(b"not a certificate").is_err());
    }

    fn rcgen_cert(dn: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut name = rcgen::DistinguishedName::new();
        for (ty, value) in dn {
            name.push(ty.clone(), *value);
        }
        params.distinguished_name = name;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certificate_subjects_from_rcgen() {
        let cert = rcgen_cert(&[
            (rcgen::DnType::CountryName, "US"),
            (rcgen::DnType::OrganizationalUnitName, "prod"),
            (rcgen::DnType::CommonName, "orders-svc"),
        ]);
        assert_eq!(
            rfc2253_subject(&cert).unwrap(),
            "CN=orders-svc,OU=prod,C=US"
        );
        let cert = rcgen_cert(&[(rcgen::DnType::CommonName, "a, b; \"c\"")]);
        assert_eq!(rfc2253_subject(&cert).unwrap(), r#"CN=a\, b\; \"c\""#);
        let cert = rcgen_cert(&[(rcgen::DnType::CommonName, "billing-svc")]);
        let principal = principal_from_certificate(&cert, &PrincipalMapper::default()).unwrap();
        assert_eq!(principal.as_str(), "User:CN=billing-svc");
    }

    #[test]
    fn mapping_rules_first_match_wins() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=(.*?)$/$1/, RULE:^CN=([^,]*)$/svc-$1/U,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            mapper.map("CN=orders-svc,OU=prod").as_deref(),
            Some("orders-svc")
        );
        assert_eq!(mapper.map("CN=billing").as_deref(), Some("SVC-BILLING"));
        assert_eq!(mapper.map("O=x,C=US").as_deref(), Some("O=x,C=US"));
    }

    #[test]
    fn mapping_rules_from_the_kafka_docs() {
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\nDEFAULT",
        )
        .unwrap();
        assert_eq!(
            mapper
                .map("CN=kafka-server1,OU=ServiceUsers,O=Org")
                .as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            mapper
                .map("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(
            mapper.map("OU=x,cN=Some.Host").as_deref(),
            Some("some.host")
        );
    }

    #[test]
    fn without_default_unmatched_subjects_are_refused() {
        let mapper = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
        assert_eq!(mapper.map("OU=x"), None);
        assert_eq!(PrincipalMapper::parse("").unwrap().map("CN=a"), None);
    }

    #[test]
    fn replacement_syntax_matches_java() {
        // A reference past the group count is literal (Kafka escapes it), `\$` is a dollar,
        // and replaceAll also replaces the empty match at the end of `(.*)`.
        let mapper = PrincipalMapper::parse(r"RULE:^CN=(\w+)$/$1-$2-\$/").unwrap();
        assert_eq!(mapper.map("CN=abc").as_deref(), Some("abc-$2-$"));
        let mapper = PrincipalMapper::parse("RULE:(.*)/x$1/").unwrap();
        assert_eq!(mapper.map("abc").as_deref(), Some("xabcx"));
        let mapper = PrincipalMapper::parse(r"RULE:CN=(?P<svc>[a-z]+)/${svc}/").unwrap();
        assert_eq!(mapper.map("CN=abc").as_deref(), Some("abc"));
    }

    #[test]
    fn invalid_rules_are_errors() {
        for rules in [
            "RULE:abc",
            "RULE:a/b/X",
            "nonsense",
            "RULE:(/x/",
            "RULE:a/$x/",
            "RULE:a/$1/",
            "RULE:(a)/b\\/",
        ] {
            assert!(
                PrincipalMapper::parse(rules).is_err(),
                "{rules} should be refused"
            );
        }
    }

    #[test]
    fn principals_parse_type_and_name() {
        let p = KafkaPrincipal::parse("User:CN=a:b").unwrap();
        assert_eq!((p.principal_type(), p.name()), ("User", "CN=a:b"));
        assert!(KafkaPrincipal::parse("nocolon").is_none());
        assert_eq!(KafkaPrincipal::anonymous().as_str(), "User:ANONYMOUS");
    }

    proptest! {
        #[test]
        fn rule_parser_never_panics(rules in ".{0,200}", subject in ".{0,60}") {
            if let Ok(mapper) = PrincipalMapper::parse(&rules) {
                let _ = mapper.map(&subject);
            }
        }

        #[test]
        fn rule_like_strings_never_panic(pattern in "[a-zA-Z=,.*()\\\\$0-9^/ ]{0,30}", replacement in "[a-z$0-9{}\\\\/]{0,12}", flag in "[LUX]?") {
            let rules = format!("RULE:{pattern}/{replacement}/{flag},DEFAULT");
            if let Ok(mapper) = PrincipalMapper::parse(&rules) {
                let _ = mapper.map("CN=orders-svc,OU=prod");
            }
        }

        #[test]
        fn name_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = format_rfc2253(&bytes);
            let _ = rfc2253_subject(&bytes);
        }

        #[test]
        fn escaping_round_trips_through_unescape(value in "[ -~]{1,30}") {
            let der = name(&[vec![ava(CN, 0x0c, value.as_bytes())]]);
            let formatted = format_rfc2253(&der).unwrap();
            let body = formatted.strip_prefix("CN=").unwrap();
            let mut unescaped = String::new();
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                if c == '\\' { unescaped.push(chars.next().unwrap()); } else {
                    prop_assert!(!",=+<>#;\"".contains(c));
                    unescaped.push(c);
                }
            }
            prop_assert_eq!(unescaped, value);
        }
    }
}
