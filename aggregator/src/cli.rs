//! Command-line interface.
//!
//! Administrative subcommands open the same database as `serve` (SQLite in
//! WAL mode, or PostgreSQL) and work while it runs.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use suanli_protocol::{
    identifier::{Identifier, Industry, RegionCode},
    join::JoinString,
    node::Role,
    uscc::Uscc,
};

use crate::{
    config::{ServeConfig, ServeFile},
    identity::{self, NodeIdentity},
    local_agent::LocalAgent,
    parent, run,
    service::{
        Actor, hosts, nodes, providers,
        tokens::{self, TokenRequest},
    },
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
    /// Selection (算力选择): send a demand to a running node and print its ranked answer.
    Select(SelectArgs),
    /// Child nodes (下级节点): join tokens, requests to review (备案), revocation.
    #[command(subcommand)]
    Node(NodeCommand),
    /// This node's parent node (上级节点): join one, see the link.
    #[command(subcommand)]
    Parent(ParentCommand),
    /// Market monitoring (市场监测): export a stream's subtree figures,
    /// one JSON object per period, from a running node.
    Reports(ReportsArgs),
    /// Replicas (副本): several aggregators serving one node from one PostgreSQL database.
    #[command(subcommand)]
    Replica(ReplicaCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReplicaCommand {
    /// Give a new replica the node's identity: checks the files copied from
    /// another replica against the node's database and installs them in
    /// this replica's data directory (docs/replicas.md).
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Where the copied files are: another replica's data directory, or a copy of its identity files.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

/// A running node, asked over its HTTP API.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The node's HTTP address.
    #[arg(
        long,
        env = "SUANLI_SERVER",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT"
    )]
    pub server: String,
    /// An API key (sk_…); without one, the node's admin token in --data-dir is used.
    #[arg(
        long,
        env = "SUANLI_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    #[arg(
        long,
        env = "SUANLI_DATA_DIR",
        default_value = "suanli-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ReportsArgs {
    /// resource, platform, scheduling or application.
    #[arg(long, default_value = "resource")]
    pub stream: String,
    /// The period: 10s, 1h or 1d (default: the stream's own).
    #[arg(long)]
    pub period: Option<String>,
    /// The first period: a time in it, RFC 3339 or unix milliseconds
    /// (default: the latest period the whole subtree reported, alone).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// The last period: a time in it (default: --from's).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Subcommands about join tokens for child nodes.
    #[command(subcommand)]
    Token(NodeTokenCommand),
    /// List join requests and child nodes (all states unless --state).
    Requests {
        #[command(flatten)]
        store: StoreArgs,
        /// pending, approved, rejected or revoked.
        #[arg(long)]
        state: Option<String>,
    },
    /// Approve a join request (备案): signs the child's certificate, assigns its prefix.
    Approve {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
    },
    /// Reject a join request with a reason.
    Reject {
        #[command(flatten)]
        store: StoreArgs,
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Revoke an approved child node (by id or prefix); its link closes within a second.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        child: String,
        #[arg(long, default_value = "revoked by node staff")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeTokenCommand {
    /// Create a one-time join token for a child node; prints the join string alone on stdout.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// regional or industry.
        #[arg(long)]
        role: String,
        /// A regional node's province (GB/T 2260 two digits, e.g. 32).
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
        /// An industry node's industry (GB/T 4754, e.g. I65).
        #[arg(long, value_name = "CODE")]
        industry: Option<String>,
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// This node's QUIC address for the join string (default: what `serve` advertises).
        #[arg(long, value_name = "HOST:PORT")]
        address: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ParentCommand {
    /// Ask the parent node a join string names to take this node; its staff then approve.
    Join {
        #[command(flatten)]
        store: StoreArgs,
        join_string: String,
        /// The operator (运营主体) of this node.
        #[arg(long)]
        operator_name: String,
        /// The operator's unified social credit code.
        #[arg(long)]
        operator_uscc: String,
    },
    /// Show the parent link: state, prefix, parent.
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct SelectArgs {
    /// The demand as JSON, or @FILE, or - for standard input
    /// (e.g. '{"accelerator": {"model": "H100", "count": 8}, "region": "44"}').
    pub demand: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print the whole answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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

/// Where the node's state is, for administrative commands: found as
/// `serve` finds it (the same config file, variables and flags).
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// The node's config file, as `serve` is given it: its data_dir and database_url.
    #[arg(long, env = "SUANLI_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The node's data directory [default: the config's, else suanli-data].
    #[arg(long, env = "SUANLI_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The node's database [default: the config's, else SQLite in the data directory].
    #[arg(long, env = "SUANLI_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
}

/// A node's store, opened for an administrative command, and its data
/// directory.
struct NodeState {
    store: Store,
    data_dir: PathBuf,
}

impl NodeState {
    /// The node's identity, which `serve` made (never made here), and
    /// the one its database records: a join string or certificate signed
    /// by another node's CA would be worthless.
    async fn identity(&self) -> anyhow::Result<NodeIdentity> {
        anyhow::ensure!(
            NodeIdentity::exists(&self.data_dir),
            "{} holds no node's identity: run this where the node's data directory is \
             (--data-dir, or --config as `serve` has it)",
            self.data_dir.display()
        );
        let identity = NodeIdentity::load(&self.data_dir)
            .with_context(|| format!("node identity in {}", self.data_dir.display()))?;
        if let Some(recorded) = self.store.node_ca().await? {
            anyhow::ensure!(
                recorded == identity.ca_fingerprint(),
                "{} holds the identity of another node than the one this database belongs to",
                self.data_dir.display()
            );
        }
        Ok(identity)
    }
}

impl StoreArgs {
    /// The data directory and database URL, as `serve` would have them.
    fn locate(&self) -> anyhow::Result<(PathBuf, Option<String>)> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                ServeFile::from_toml(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                    .0
            }
            None => ServeFile::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .or(ServeFile::defaults().data_dir)
            .unwrap_or_default();
        Ok((data_dir, self.database_url.clone().or(file.database_url)))
    }

    /// Opens the node's store; never creates one beside it.
    async fn open(&self) -> anyhow::Result<NodeState> {
        let (data_dir, url) = self.locate()?;
        let url = match url {
            Some(url) => url,
            None => {
                let dir = data_dir.display();
                anyhow::ensure!(
                    NodeIdentity::exists(&data_dir),
                    "{dir} holds no node: start `suanli-aggregator serve --data-dir {dir}` once first"
                );
                anyhow::ensure!(
                    Store::sqlite_path(&data_dir).exists(),
                    "{dir} holds a node but no database: it keeps it elsewhere (PostgreSQL). \
                     Give this command the same --config, or --database-url (SUANLI_DATABASE_URL), as `serve`"
                );
                Store::sqlite_url(&data_dir)
            }
        };
        let store = Store::open(&url)
            .await
            .with_context(|| format!("opening the database {}", run::redact(&url)))?;
        Ok(NodeState { store, data_dir })
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
    /// List the providers: owner code, kind, region, credit code, name.
    List {
        #[command(flatten)]
        store: StoreArgs,
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
        /// Where the hosts are (GB/T 2260), if not the provider's registered region.
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
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
    /// Give a host to another provider (audited). Its certificate is revoked;
    /// the new provider's agent joins it with the new provider's token.
    Transfer {
        #[command(flatten)]
        store: StoreArgs,
        /// Host id, hostname, or one of its identifiers.
        host: String,
        /// Owner code (P00002) or USCC of the provider it goes to.
        #[arg(long)]
        provider: String,
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
            let (file, deprecated) = ServeFile::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            for warning in deprecated {
                tracing::warn!(file = %path.display(), "{warning}");
            }
            file
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
                // PostgreSQL's notices (`relation … already exists,
                // skipping` at every start) are not news.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,sqlx::postgres::notice=warn")
                }),
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
            print!("{}", ServeFile::default_toml().map_err(anyhow::Error::msg)?);
            Ok(())
        }
        Command::CheckConfig(args) => {
            let config = load_config(args)?;
            print_config(&config);
            Ok(())
        }
        Command::Select(args) => select(args),
        Command::Reports(args) => reports(args),
        command => runtime()?.block_on(run(command)),
    }
}

/// What `check-config` found, as staff read it: the settings that decide
/// where the node lives and listens, one a line (the database URL without
/// its password).
fn print_config(config: &ServeConfig) {
    let database = config
        .database_url
        .as_deref()
        .map_or_else(|| "SQLite in the data directory".to_owned(), run::redact);
    let https = match &config.http_tls {
        crate::api::https::HttpTls::Plain => "plain HTTP (loopback or behind a TLS proxy only)",
        crate::api::https::HttpTls::Files { .. } => "HTTPS with the configured certificate",
        _ => "HTTPS with a certificate the node CA signs",
    };
    println!("配置有效 / configuration is valid");
    for (name, value) in [
        ("data_dir", config.data_dir.display().to_string()),
        ("database", database),
        ("quic_listen", config.quic_listen.to_string()),
        ("http_listen", config.http_listen.to_string()),
        ("http", https.to_owned()),
        ("role", config.role.as_str().to_owned()),
        ("node_prefix", config.node_prefix.to_string()),
        ("local_region", config.local_region.to_string()),
        (
            "raw_retention",
            humantime::format_duration(config.raw_retention).to_string(),
        ),
        (
            "rollup_retention",
            humantime::format_duration(config.rollup_retention).to_string(),
        ),
        ("receivers", config.alerts.receivers.len().to_string()),
        (
            "inhibit_rules",
            format!("{} (1 built in)", config.alerts.inhibit_rules.len()),
        ),
    ] {
        println!("  {name:<17} {value}");
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
            let local_agent = args.with_local_agent.then_some(LocalAgent {
                binary: args.agent_binary,
                interval: args.local_agent_interval,
            });
            run::run(config, local_agent).await
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
            let store = store.open().await?.store;
            let provider = providers::create(
                &store,
                &Actor::cli(),
                &NewProvider {
                    name: name.trim().to_owned(),
                    uscc: uscc.as_str().to_owned(),
                    region: region.to_string(),
                    industry: industry.to_string(),
                    ..Default::default()
                },
            )
            .await?;
            println!("{}", provider.owner_code);
            Ok(())
        }
        Command::Provider(ProviderCommand::List { store }) => {
            let store = store.open().await?.store;
            for p in store.providers().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.owner_code, p.kind, p.region, p.uscc, p.name
                );
            }
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            store: store_args,
            provider,
            ttl,
            uses,
            address,
            region,
        }) => {
            anyhow::ensure!(uses > 0, "--uses must be at least 1");
            let state = store_args.open().await?;
            let identity = state.identity().await?;
            let store = state.store.clone();
            let provider = store.provider(&provider).await?;
            let address = advertised(&state, address)?;
            let region = region
                .map(|r| RegionCode::parse(&r).with_context(|| format!("invalid region {r:?}")))
                .transpose()?
                .map(|r| r.to_string());
            let issued = tokens::create(
                &store,
                &Actor::cli(),
                TokenRequest {
                    provider: &provider,
                    address: &address,
                    ca_fingerprint: &identity.ca_fingerprint(),
                    ttl,
                    uses,
                    region: region.as_deref(),
                },
            )
            .await?;
            println!("{}", issued.join);
            Ok(())
        }
        Command::Host(HostCommand::Revoke { store, host }) => {
            let store = store.open().await?.store;
            let id = hosts::revoke(&store, &Actor::cli(), &host).await?;
            println!("host {id} revoked");
            Ok(())
        }
        Command::Host(HostCommand::Transfer {
            store,
            host,
            provider,
        }) => {
            let store = store.open().await?.store;
            let id = hosts::transfer(&store, &Actor::cli(), &host, &provider).await?;
            println!(
                "host {id} transferred to {provider}; its agent must join again with {provider}'s token"
            );
            Ok(())
        }
        Command::Node(command) => node_command(command).await,
        Command::Replica(ReplicaCommand::Init { store, from }) => replica_init(&store, &from).await,
        Command::Parent(command) => parent_command(command).await,
        Command::Identifier(_)
        | Command::Select(_)
        | Command::Reports(_)
        | Command::Uscc(_)
        | Command::PrintDefaultConfig
        | Command::CheckConfig(_) => unreachable!("handled without a runtime"),
    }
}

/// Installs the node's identity from `from` into a new replica's data
/// directory, once it is known to be the identity of the node the
/// database belongs to.
async fn replica_init(args: &StoreArgs, from: &std::path::Path) -> anyhow::Result<()> {
    let (data_dir, url) = args.locate()?;
    let url = url.context(
        "replicas share a PostgreSQL database: give the same --config, or --database-url \
         (SUANLI_DATABASE_URL), as the node's other replicas",
    )?;
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening the database {}", run::redact(&url)))?;
    let recorded = store.node_ca().await?.context(
        "this database belongs to no node yet: start the first replica with `serve`, \
         which makes the node's identity",
    )?;
    let missing: Vec<&str> = identity::FILES
        .into_iter()
        .filter(|f| !from.join(f).is_file())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "{} lacks {}: copy the node's files ({}) from another replica's data directory",
        from.display(),
        missing.join(", "),
        identity::FILES.join(", ")
    );
    let theirs = NodeIdentity::load(from)
        .with_context(|| format!("node identity in {}", from.display()))?
        .ca_fingerprint();
    anyhow::ensure!(
        theirs == recorded,
        "{} holds the identity of another node (CA {}…) than the one this database belongs to (CA {}…)",
        from.display(),
        &theirs[..16],
        &recorded[..16.min(recorded.len())]
    );
    if NodeIdentity::exists(&data_dir) {
        let own = NodeIdentity::load(&data_dir)?.ca_fingerprint();
        anyhow::ensure!(
            own == recorded,
            "{} holds another node's identity already (CA {}…): give this replica an empty data directory",
            data_dir.display(),
            &own[..16]
        );
        println!(
            "{} 已有本节点身份 / holds this node's identity already",
            data_dir.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    // The CA certificate last: its presence marks a complete identity.
    for file in identity::FILES.iter().rev() {
        let bytes = std::fs::read(from.join(file))
            .with_context(|| format!("reading {}", from.join(file).display()))?;
        suanli_link::files::write_private(&data_dir.join(file), &bytes)?;
    }
    println!(
        "副本已就绪 / replica ready in {} (CA {}…): start it with `suanli-aggregator serve` on the same database",
        data_dir.display(),
        &recorded[..16.min(recorded.len())]
    );
    Ok(())
}

/// The address `serve` advertises, unless one is given.
fn advertised(state: &NodeState, address: Option<String>) -> anyhow::Result<String> {
    match address {
        Some(a) => Ok(a),
        None => std::fs::read_to_string(state.data_dir.join("advertise"))
            .map(|a| a.trim().to_owned())
            .context("no --address given and `serve` has not advertised one yet"),
    }
}

async fn node_command(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Token(NodeTokenCommand::Create {
            store: store_args,
            role,
            region,
            industry,
            ttl,
            address,
        }) => {
            let role = Role::parse(&role)
                .with_context(|| format!("--role {role:?}: regional or industry"))?;
            let segment = match (role, region, industry) {
                (Role::Regional, Some(region), None) => region,
                (Role::Industry, None, Some(industry)) => industry,
                (Role::Regional, ..) => {
                    anyhow::bail!("a regional node's token takes --region only")
                }
                (Role::Industry, ..) => {
                    anyhow::bail!("an industry node's token takes --industry only")
                }
                (Role::National, ..) => {
                    anyhow::bail!("no token makes a national node: it is the root")
                }
            };
            let state = store_args.open().await?;
            let identity = state.identity().await?;
            let address = advertised(&state, address)?;
            let issued = nodes::issue_token(
                &state.store,
                &Actor::cli(),
                role,
                &segment,
                ttl,
                &address,
                &identity.ca_fingerprint(),
            )
            .await?;
            println!("{}", issued.join);
            Ok(())
        }
        NodeCommand::Requests { store, state } => {
            let store = store.open().await?.store;
            let children = store.children(state.as_deref()).await?;
            println!(
                "{:<4} {:<9} {:<9} {:<8} {:<14} {:<20} OPERATOR",
                "ID", "STATE", "ROLE", "SEGMENT", "PREFIX", "USCC"
            );
            for c in children {
                println!(
                    "{:<4} {:<9} {:<9} {:<8} {:<14} {:<20} {}",
                    c.id,
                    c.state,
                    c.role,
                    c.segment,
                    c.prefix.as_deref().unwrap_or("-"),
                    c.operator_uscc,
                    c.operator_name
                );
            }
            Ok(())
        }
        NodeCommand::Approve {
            store: store_args,
            id,
        } => {
            let state = store_args.open().await?;
            let identity = state.identity().await?;
            let child = nodes::approve(&state.store, &identity, &Actor::cli(), id).await?;
            println!(
                "child node {id} approved: prefix {}",
                child.prefix.as_deref().unwrap_or("-")
            );
            Ok(())
        }
        NodeCommand::Reject { store, id, reason } => {
            let store = store.open().await?.store;
            nodes::reject(&store, &Actor::cli(), id, &reason).await?;
            println!("child node request {id} rejected");
            Ok(())
        }
        NodeCommand::Revoke {
            store,
            child,
            reason,
        } => {
            let store = store.open().await?.store;
            let child = nodes::revoke(&store, &Actor::cli(), &child, &reason).await?;
            println!("child node {} revoked", child.id);
            Ok(())
        }
    }
}

async fn parent_command(command: ParentCommand) -> anyhow::Result<()> {
    match command {
        ParentCommand::Join {
            store: store_args,
            join_string,
            operator_name,
            operator_uscc,
        } => {
            let join: JoinString = join_string
                .parse()
                .map_err(|e| anyhow::anyhow!("invalid join string: {e}"))?;
            let uscc = Uscc::parse(&operator_uscc)
                .with_context(|| format!("invalid --operator-uscc {operator_uscc:?}"))?;
            anyhow::ensure!(
                !operator_name.trim().is_empty(),
                "--operator-name must not be empty"
            );
            let state = store_args.open().await?;
            let (role, _) = nodes::own_place(&state.store).await?;
            let identity = state.identity().await?;
            let id = parent::request_join(
                &state.store,
                &state.data_dir,
                parent::JoinAsk {
                    join,
                    role,
                    operator_name: operator_name.trim().to_owned(),
                    operator_uscc: uscc.as_str().to_owned(),
                    advertise: advertised(&state, None)?,
                    ca_fingerprint: identity.ca_fingerprint(),
                },
            )
            .await?;
            println!(
                "join request {id} sent; the parent's staff review it (suanli-aggregator node approve {id}), and `serve` links once approved"
            );
            Ok(())
        }
        ParentCommand::Status { store } => {
            let store = store.open().await?.store;
            match store.parent_link().await? {
                None => println!("no parent: this node stands alone"),
                Some(link) => {
                    println!("parent:  {}", link.address);
                    println!("state:   {}", link.state);
                    println!("request: {}", link.request_id);
                    if let Some(prefix) = link.prefix {
                        println!("prefix:  {prefix}");
                    }
                    if let Some(reason) = link.reason {
                        println!("reason:  {reason}");
                    }
                }
            }
            Ok(())
        }
    }
}

impl ServerArgs {
    /// One request over plain HTTP/1.1 (a node answers plain HTTP on
    /// loopback): its JSON answer, or the node's problem document as the
    /// error.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> anyhow::Result<Value> {
        use std::io::{Read, Write};
        let token = match &self.api_key {
            Some(key) => key.clone(),
            None => std::fs::read_to_string(self.data_dir.join("admin.token"))
                .with_context(|| {
                    format!(
                        "no --api-key, and no admin token in {}",
                        self.data_dir.display()
                    )
                })?
                .trim()
                .to_owned(),
        };
        let mut stream = std::net::TcpStream::connect(&self.server)
            .with_context(|| format!("connecting to {}", self.server))?;
        let body = body.unwrap_or("");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.server,
            body.len()
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .context("the node's answer is not HTTP")?;
        // The node answers JSON with a Content-Length, never chunked.
        let answer: Value =
            serde_json::from_str(body).with_context(|| format!("the node answered: {head}"))?;
        if let Some(status) = answer.get("status").and_then(|s| s.as_u64()) {
            let errors: Vec<String> = answer["errors"]
                .as_array()
                .map(|e| {
                    e.iter()
                        .map(|e| {
                            format!(
                                "  {}: {}",
                                e["field"].as_str().unwrap_or(""),
                                e["message"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            anyhow::bail!(
                "{status}: {}\n{}",
                answer["detail"].as_str().unwrap_or(""),
                errors.join("\n")
            );
        }
        Ok(answer)
    }
}

/// The most periods one export walks.
const MAX_EXPORTED_PERIODS: u64 = 100_000;

/// `reports`: each period's subtree figures from `--from` to `--to`, one
/// JSON object per line (the export staff archive, and the northbound JSON).
fn reports(args: ReportsArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let time = |flag: &str, text: &str| -> anyhow::Result<u64> {
        text.parse::<u64>()
            .ok()
            .or_else(|| {
                humantime::parse_rfc3339_weak(text)
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
            })
            .with_context(|| format!("--{flag} {text:?}: RFC 3339 or unix milliseconds"))
    };
    let period_ms = match args.period.as_deref() {
        None => None,
        Some(p) => Some(
            crate::market::PERIOD_NAMES
                .iter()
                .find(|(name, _)| *name == p)
                .map(|(_, ms)| *ms)
                .with_context(|| format!("--period {p:?}: 10s, 1h or 1d"))?,
        ),
    };
    let query = |at: Option<u64>| {
        let mut q = format!("/api/v1/reports?stream={}", args.stream);
        if let Some(p) = &args.period {
            q.push_str(&format!("&period={p}"));
        }
        if let Some(at) = at {
            q.push_str(&format!("&at={at}"));
        }
        q
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let Some(from) = args.from.as_deref() else {
        let answer = args.server.request("GET", &query(None), None)?;
        writeln!(out, "{answer}")?;
        return Ok(());
    };
    let from = time("from", from)?;
    let to = match args.to.as_deref() {
        Some(to) => time("to", to)?,
        None => from,
    };
    anyhow::ensure!(to >= from, "--to is before --from");
    // The first answer says the period's length and start; walk from there.
    let first = args.server.request("GET", &query(Some(from)), None)?;
    let step = first["period_ms"]
        .as_u64()
        .or(period_ms)
        .context("the node's answer has no period_ms")?;
    let mut at = first["period_start_ms"]
        .as_u64()
        .context("the node's answer has no period_start_ms")?;
    anyhow::ensure!(
        (to - at) / step < MAX_EXPORTED_PERIODS,
        "{} periods: export at most {MAX_EXPORTED_PERIODS} at a time",
        (to - at) / step + 1
    );
    writeln!(out, "{first}")?;
    while at + step <= to {
        at += step;
        writeln!(
            out,
            "{}",
            args.server.request("GET", &query(Some(at)), None)?
        )?;
    }
    Ok(())
}

/// `select`: POSTs the demand over plain HTTP/1.1 and prints the answer.
fn select(args: SelectArgs) -> anyhow::Result<()> {
    use std::io::Read;
    let demand = match args.demand.as_str() {
        "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
        d if d.starts_with('@') => std::fs::read_to_string(&d[1..])
            .with_context(|| format!("reading the demand from {}", &d[1..]))?,
        d => d.to_owned(),
    };
    let _: serde_json::Value = serde_json::from_str(&demand).context("the demand is not JSON")?;
    let answer = args
        .server
        .request("POST", "/api/v1/selection", Some(&demand))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    println!(
        "{} of {} hosts matched ({} µs)",
        answer["matched_hosts"], answer["considered_hosts"], answer["elapsed_us"]
    );
    for (rank, candidate) in answer["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        println!(
            "#{} score {:.3}",
            rank + 1,
            candidate["score"].as_f64().unwrap_or(0.0)
        );
        for host in candidate["hosts"].as_array().into_iter().flatten() {
            let path = &host["path"];
            println!(
                "   {} {} {} {} {} fresh {} ms{}",
                host["identifier"].as_str().unwrap_or("-"),
                host["hostname"].as_str().unwrap_or(""),
                host["provider"].as_str().unwrap_or(""),
                host["region"].as_str().unwrap_or(""),
                host["state"].as_str().unwrap_or(""),
                host["freshness_ms"],
                if path.is_object() {
                    format!(
                        ", path {:.1} ms ≥ {} Mb/s",
                        path["latency_ms"].as_f64().unwrap_or(0.0),
                        path["bottleneck_mbps"]
                    )
                } else {
                    String::new()
                }
            );
            for r in host["resources"].as_array().into_iter().flatten() {
                println!("      {}", r.as_str().unwrap_or(""));
            }
        }
    }
    if answer["candidates"].as_array().is_none_or(|c| c.is_empty()) {
        println!("nothing matched:");
        for e in answer["eliminated"].as_array().into_iter().flatten() {
            println!(
                "  {:<14} eliminated {} hosts",
                e["constraint"].as_str().unwrap_or(""),
                e["hosts"]
            );
        }
        for m in answer["nearest_misses"].as_array().into_iter().flatten() {
            let why: Vec<String> = m["failed"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f["constraint"].as_str().unwrap_or(""),
                        f["detail"].as_str().unwrap_or("")
                    )
                })
                .collect();
            println!(
                "  nearest: {} ({})",
                m["hostname"].as_str().unwrap_or(""),
                why.join("; ")
            );
        }
        if let Some(short) = answer["groups_short"].as_str() {
            println!("  {short}");
        }
    }
    Ok(())
}
