"""Server health: HAProxy's check counter and passive observation (state), the
`option httpchk` request and verdict (httpcheck), and the asyncio checks that feed
them (checker)."""
