//! Command-line interface.

use anyhow::Context;
use clap::{Parser, Subcommand};
use suanli_protocol::{identifier::Identifier, uscc::Uscc};

#[derive(Debug, Parser)]
#[command(
    name = "suanli-aggregator",
    version,
    about = "Suanli aggregator: a node's identifiers, selection and monitoring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resource identifiers (算力标识).
    #[command(subcommand)]
    Identifier(IdentifierCommand),
    /// Unified social credit codes (统一社会信用代码).
    #[command(subcommand)]
    Uscc(UsccCommand),
}

#[derive(Debug, Subcommand)]
pub enum IdentifierCommand {
    /// Validate an identifier and print its canonical form and fields.
    Check { identifier: String },
}

#[derive(Debug, Subcommand)]
pub enum UsccCommand {
    /// Validate a code's structure and check characters.
    Check { code: String },
}

pub fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Identifier(IdentifierCommand::Check { identifier }) => {
            let id: Identifier = identifier
                .parse()
                .with_context(|| format!("invalid identifier {identifier:?}"))?;
            println!("{id}");
            println!("{id:#?}");
        }
        Command::Uscc(UsccCommand::Check { code }) => {
            let uscc = Uscc::parse(&code).with_context(|| format!("invalid code {code:?}"))?;
            println!("{}", uscc.as_str());
        }
    }
    Ok(())
}
