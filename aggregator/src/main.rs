//! `suanli-aggregator`: everything is in the library; see [`suanli_aggregator::cli`].

fn main() -> anyhow::Result<()> {
    suanli_aggregator::cli::main()
}
