"""Tool subcommands that read traces: validate, summary, filter check/explain, convert."""
