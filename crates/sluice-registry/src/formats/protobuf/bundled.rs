//! The `.proto` files Confluent's registry resolves without their being registered: Google's
//! common types (`google/type/*.proto`) and Confluent's own (`confluent/meta.proto`,
//! `confluent/type/*.proto`). The well-known `google/protobuf/*.proto` come from protox. The
//! texts here hold the definitions only (packages, messages, fields, extensions).

use protox::file::{File, FileResolver};

/// Path and text of each bundled file.
const FILES: &[(&str, &str)] = &[
    (
        "confluent/meta.proto",
        include_str!("bundled/confluent/meta.proto"),
    ),
    (
        "confluent/type/decimal.proto",
        include_str!("bundled/confluent/type/decimal.proto"),
    ),
    (
        "confluent/type/variant.proto",
        include_str!("bundled/confluent/type/variant.proto"),
    ),
    (
        "google/type/calendar_period.proto",
        include_str!("bundled/google/type/calendar_period.proto"),
    ),
    (
        "google/type/color.proto",
        include_str!("bundled/google/type/color.proto"),
    ),
    (
        "google/type/date.proto",
        include_str!("bundled/google/type/date.proto"),
    ),
    (
        "google/type/datetime.proto",
        include_str!("bundled/google/type/datetime.proto"),
    ),
    (
        "google/type/dayofweek.proto",
        include_str!("bundled/google/type/dayofweek.proto"),
    ),
    (
        "google/type/decimal.proto",
        include_str!("bundled/google/type/decimal.proto"),
    ),
    (
        "google/type/expr.proto",
        include_str!("bundled/google/type/expr.proto"),
    ),
    (
        "google/type/fraction.proto",
        include_str!("bundled/google/type/fraction.proto"),
    ),
    (
        "google/type/interval.proto",
        include_str!("bundled/google/type/interval.proto"),
    ),
    (
        "google/type/latlng.proto",
        include_str!("bundled/google/type/latlng.proto"),
    ),
    (
        "google/type/money.proto",
        include_str!("bundled/google/type/money.proto"),
    ),
    (
        "google/type/month.proto",
        include_str!("bundled/google/type/month.proto"),
    ),
    (
        "google/type/phone_number.proto",
        include_str!("bundled/google/type/phone_number.proto"),
    ),
    (
        "google/type/postal_address.proto",
        include_str!("bundled/google/type/postal_address.proto"),
    ),
    (
        "google/type/quaternion.proto",
        include_str!("bundled/google/type/quaternion.proto"),
    ),
    (
        "google/type/timeofday.proto",
        include_str!("bundled/google/type/timeofday.proto"),
    ),
];

/// Resolves imports of the bundled files; consulted after a schema's own references, so a
/// registered reference of the same name wins, as in Confluent.
pub(super) struct BundledResolver;

impl FileResolver for BundledResolver {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let (_, text) = FILES
            .iter()
            .find(|(path, _)| *path == name)
            .ok_or_else(|| protox::Error::file_not_found(name))?;
        File::from_source(name, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_file_compiles() {
        for (path, _) in FILES {
            let mut chain = protox::file::ChainFileResolver::new();
            chain.add(BundledResolver);
            chain.add(protox::file::GoogleFileResolver::new());
            let mut compiler = protox::Compiler::with_file_resolver(chain);
            if let Err(e) = compiler.open_file(path) {
                panic!("{path}: {e}");
            }
        }
    }
}
