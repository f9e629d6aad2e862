"""CAI-style billing connector: line commands over TCP with a logged-in connection pool.

`codec` holds the command templates and the response grammar (pure),
`protocol` one connection, `pool` the pool with re-login and timeouts,
`connector` the `CaiBilling` billing port.
"""
