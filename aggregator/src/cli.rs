//! Command-line interface.
//!
//! Administrative subcommands open the same database as `serve` (SQLite in
//! WAL mode, or PostgreSQL) and work while it runs.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use suanli_protocol::{
    identifier::{Identifier, Industry, RegionCode},
    uscc::Uscc,
};

use crate::{
    config::{ServeConfig, ServeFile},
    node::NodeIdentity,
    serve::{self, RunOptions},
    store::{NewProvider, Store},
};

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
    /// Run the node: QUIC ingest, storage and the HTTP API.
    Serve(ServeArgs),
    /// Validate a config file (and flags) without starting.
    CheckConfig(ConfigArgs),
    /// Print the default configuration as TOML.
    PrintDefaultConfig,
    /// Resource providers (算力资源提供商).
    #[command(subcommand)]
    Provider(ProviderCommand),
    /// Enrollment tokens for hosts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Enrolled hosts.
    #[command(subcommand)]
    Host(HostCommand),
    /// Resource identifiers (算力标识).
    #[command(subcommand)]
    Identifier(IdentifierCommand),
    /// Unified social credit codes (统一社会信用代码).
    #[command(subcommand)]
    Uscc(UsccCommand),
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// TOML file; flags and SUANLI_* variables override it.
    #[arg(long, env = "SUANLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ServeFile,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Also enroll and run an agent for this host.
    #[arg(long)]
    pub with_local_agent: bool,
    /// The suanli-agent binary for --with-local-agent (next to this one by default).
    #[arg(long, value_name = "PATH")]
    pub agent_binary: Option<PathBuf>,
    /// The local agent's sampling interval (e.g. 1s).
    #[arg(long, value_name = "DURATION")]
    pub local_agent_interval: Option<String>,
}

/// Where the node's state is, for administrative commands.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[arg(
        long,
        env = "SUANLI_DATA_DIR",
        value_name = "DIR",
        default_value = "suanli-data"
    )]
    pub data_dir: PathBuf,
    #[arg(long, env = "SUANLI_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    async fn open(&self) -> anyhow::Result<Store> {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| Store::sqlite_url(&self.data_dir));
        anyhow::ensure!(
            self.database_url.is_some() || self.data_dir.join("ca.pem").exists(),
            "{} holds no node: start `suanli-aggregator serve --data-dir {}` once first",
            self.data_dir.display(),
            self.data_dir.display()
        );
        Store::open(&url)
            .await
            .with_context(|| format!("opening the database {}", serve::redact(&url)))
    }
}

#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Register a provider; prints its owner code (e.g. P00001).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        name: String,
        /// 统一社会信用代码, checked by its check characters.
        #[arg(long)]
        uscc: String,
        /// GB/T 2260 six-digit region code, e.g. 110108.
        #[arg(long)]
        region: String,
        /// GB/T 4754 section and division, e.g. I65.
        #[arg(long)]
        industry: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an enrollment token; prints the join string alone on stdout.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// Owner code (P00001) or USCC of the provider the host belongs to.
        #[arg(long)]
        provider: String,
        /// How long the token stays valid (e.g. 24h, 30m).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// How many hosts may join with it.
        #[arg(long, default_value_t = 1)]
        uses: u64,
        /// Aggregator address for the join string (default: what `serve` advertises).
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Refuse a host's certificate from now on; its live connection closes within a second.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        /// Host id, hostname, or one of its identifiers.
        host: String,
    },
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

fn load_config(args: ConfigArgs) -> anyhow::Result<ServeConfig> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            ServeFile::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => ServeFile::default(),
    };
    ServeConfig::validate(args.settings.over(file))
        .map_err(|problems| anyhow::anyhow!("invalid configuration:\n  {}", problems.join("\n  ")))
}

pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SUANLI_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Identifier(IdentifierCommand::Check { identifier }) => {
            let id: Identifier = identifier
                .parse()
                .with_context(|| format!("invalid identifier {identifier:?}"))?;
            println!("{id}");
            println!("{id:#?}");
            Ok(())
        }
        Command::Uscc(UsccCommand::Check { code }) => {
            let uscc = Uscc::parse(&code).with_context(|| format!("invalid code {code:?}"))?;
            println!("{}", uscc.as_str());
            Ok(())
        }
        Command::PrintDefaultConfig => {
            print!("{}", toml::to_string(&ServeFile::defaults())?);
            Ok(())
        }
        Command::CheckConfig(args) => {
            let config = load_config(args)?;
            println!("configuration is valid: {config:#?}");
            Ok(())
        }
        command => runtime()?.block_on(run(command)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = load_config(args.config)?;
            serve::run(
                config,
                RunOptions {
                    with_local_agent: args.with_local_agent,
                    agent_binary: args.agent_binary,
                    local_agent_interval: args.local_agent_interval,
                },
            )
            .await
        }
        Command::Provider(ProviderCommand::Create {
            store,
            name,
            uscc,
            region,
            industry,
        }) => {
            let uscc = Uscc::parse(&uscc).with_context(|| format!("invalid USCC {uscc:?}"))?;
            let region =
                RegionCode::parse(&region).with_context(|| format!("invalid region {region:?}"))?;
            let industry = Industry::parse(&industry)
                .with_context(|| format!("invalid industry {industry:?}"))?;
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let provider = store
                .open()
                .await?
                .create_provider(&NewProvider {
                    name: name.trim().to_owned(),
                    uscc: uscc.as_str().to_owned(),
                    region: region.to_string(),
                    industry: industry.to_string(),
                })
                .await?;
            println!("{}", provider.owner_code);
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            store: store_args,
            provider,
            ttl,
            uses,
            address,
        }) => {
            anyhow::ensure!(uses > 0, "--uses must be at least 1");
            let store = store_args.open().await?;
            let provider = store.provider(&provider).await?;
            let (identity, _) = NodeIdentity::load_or_create(&store_args.data_dir)?;
            let address = match address {
                Some(a) => a,
                None => std::fs::read_to_string(store_args.data_dir.join("advertise"))
                    .map(|a| a.trim().to_owned())
                    .context("no --address given and `serve` has not advertised one yet")?,
            };
            let join = serve::create_join_string(
                &store,
                provider.id,
                &address,
                &identity.ca_fingerprint(),
                ttl,
                uses,
            )
            .await?;
            println!("{join}");
            Ok(())
        }
        Command::Host(HostCommand::Revoke { store, host }) => {
            let id = store.open().await?.revoke_host(&host).await?;
            println!("host {id} revoked");
            Ok(())
        }
        Command::Identifier(_)
        | Command::Uscc(_)
        | Command::PrintDefaultConfig
        | Command::CheckConfig(_) => unreachable!("handled without a runtime"),
    }
}
