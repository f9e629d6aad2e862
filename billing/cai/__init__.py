"""CAI-style billing connector: line commands over TCP with a logged-in connection pool.

C{codec} holds the command templates and the response grammar (pure),
C{protocol} one connection, C{pool} the pool with re-login and timeouts,
C{connector} the C{CaiBilling} billing port.
"""
