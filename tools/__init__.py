"""graphtune's MCP tools (one module each) and the domain code behind them."""

__all__: list[str] = []
