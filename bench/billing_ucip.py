"""The UCIP side of bench/billing.py: a connector to the simulator's AIR and its counters."""
from __future__ import annotations


class UcipBench:
    """A started UCIP client and connector to C{http://127.0.0.1:<port>/Air}.

    @ivar stats: credits answered and failed, for the benchmark's summary.
    """

    def __init__(self, port: int, reactor, pool_size: int):
        from billing.ucip.client import UcipClient
        from billing.ucip.config import UcipSettings
        from billing.ucip.connector import UcipBilling
        s = UcipSettings(hosts=("http://127.0.0.1:%d/Air" % port,), pool_size=pool_size,
                         request_timeout=10.0)
        self.client = UcipClient(s, reactor=reactor)
        self.billing = UcipBilling(self.client, s, clock=reactor)
        self.stats = {"http_pool_per_host": pool_size}

    def startService(self):
        self.client.startService()

    async def when_open(self, timeout):
        return True

    def stopService(self):
        return self.client.stopService()
