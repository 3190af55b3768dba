//! `sluice user`: SCRAM users (KIP-554) with the standard admin APIs
//! (DescribeUserScramCredentials, AlterUserScramCredentials), so it manages Sluice, Apache
//! Kafka and MSK alike. Passwords are salted and hashed on this side; the broker never sees
//! them.

use anyhow::Context;
use sluice_admin::ScramChange;
use sluice_sasl::ScramMechanism;

use crate::cmd::acl::connect;
use crate::kafka::ClientArgs;

/// The `sluice user` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// List users and their SCRAM mechanisms (all users, or the named ones).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// Only these users.
        users: Vec<String>,
    },
    /// Add a user, or change its password: one SCRAM credential per mechanism. SASL/PLAIN
    /// logins on Sluice are checked against the same credentials.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// The user name (its principal is `User:<name>`).
        name: String,
        /// The password [default: read from the SLUICE_USER_PASSWORD environment variable].
        #[arg(long, env = "SLUICE_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable) [default: both].
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Vec<ScramMechanism>,
        /// PBKDF2 iterations, 4096 to 16384.
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
    },
    /// Remove a user's credentials (all mechanisms, or the named ones).
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        /// The user name.
        name: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable) [default: every mechanism it has].
        #[arg(long, value_parser = parse_mechanism)]
        mechanism: Vec<ScramMechanism>,
    },
}

fn parse_mechanism(text: &str) -> Result<ScramMechanism, String> {
    sluice_sasl::Mechanism::parse(&text.to_ascii_uppercase())
        .and_then(|m| m.scram())
        .ok_or_else(|| format!("{text:?} is not SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn both_if_empty(mechanisms: Vec<ScramMechanism>) -> Vec<ScramMechanism> {
    if mechanisms.is_empty() {
        vec![ScramMechanism::Sha256, ScramMechanism::Sha512]
    } else {
        mechanisms
    }
}

/// Runs a `sluice user` subcommand.
pub(crate) async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::List { client, users } => {
            let mut conn = connect(&client).await?;
            for info in sluice_admin::describe_user_scram_credentials(&mut conn, &users).await? {
                println!(
                    "{} {} iterations={}",
                    info.user,
                    info.mechanism.name(),
                    info.iterations
                );
            }
        }
        UserCommand::Add {
            client,
            name,
            password,
            mechanism,
            iterations,
        } => {
            anyhow::ensure!(!password.is_empty(), "the password must not be empty");
            let changes: Vec<ScramChange> = both_if_empty(mechanism)
                .into_iter()
                .map(|mechanism| ScramChange::Upsert {
                    user: name.clone(),
                    mechanism,
                    iterations,
                    password: password.clone(),
                })
                .collect();
            let mut conn = connect(&client).await?;
            sluice_admin::alter_user_scram_credentials(&mut conn, &changes).await?;
            println!("user {name} set ({} credential(s))", changes.len());
        }
        UserCommand::Remove {
            client,
            name,
            mechanism,
        } => {
            let mut conn = connect(&client).await?;
            let mechanisms = if mechanism.is_empty() {
                sluice_admin::describe_user_scram_credentials(
                    &mut conn,
                    std::slice::from_ref(&name),
                )
                .await
                .with_context(|| format!("cannot find the credentials of user {name}"))?
                .into_iter()
                .map(|info| info.mechanism)
                .collect()
            } else {
                mechanism
            };
            let changes: Vec<ScramChange> = mechanisms
                .into_iter()
                .map(|mechanism| ScramChange::Delete {
                    user: name.clone(),
                    mechanism,
                })
                .collect();
            sluice_admin::alter_user_scram_credentials(&mut conn, &changes).await?;
            println!("user {name}: {} credential(s) removed", changes.len());
        }
    }
    Ok(())
}
