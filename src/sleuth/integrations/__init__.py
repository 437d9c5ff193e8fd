"""sleuth's tools for other hosts, all built from the same :class:`~sleuth.tools.base.Tool` objects.

* :mod:`sleuth.integrations.mcp_server`: ``sleuth mcp`` (MCP over stdio or streamable HTTP; needs the ``mcp`` extra)
* :mod:`sleuth.integrations.openai_tools`: ``openai_tools(corpus, include=...) -> (specs, dispatcher)``
* :mod:`sleuth.integrations.langchain_tools`: ``langchain_tools(corpus) -> list[BaseTool]`` (``langchain`` extra)
* :mod:`sleuth.integrations.toolset`: ``build_toolkit(corpus, ...)``, the tools available for a corpus

Nothing is imported here, so ``import sleuth`` stays light.
"""
