//! `suanli-agent`: everything is in the library; see [`suanli_agent::cli`].

fn main() -> anyhow::Result<()> {
    suanli_agent::cli::main()
}
