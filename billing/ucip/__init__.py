"""Ericsson AIR UCIP billing connector: UpdateBalanceAndDate over XML-RPC/HTTP."""
