fn main() -> anyhow::Result<()> {
    suanli_aggregator::cli::main()
}
