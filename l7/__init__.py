"""The layer-7 tier: asyncio HTTP/1.1 reverse proxy for ``mode http`` frontends.

``proxy`` serves frontends, ``upstream`` holds backends' servers and connection
pools, ``balance`` chooses servers, ``http1`` builds message heads, ``responses``
holds the responses pyxlb generates itself.
"""
