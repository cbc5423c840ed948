fn main() -> anyhow::Result<()> {
    suanli_agent::cli::main()
}
