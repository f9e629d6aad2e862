"""The order in which one group commit's units take their row locks.

Two writers (two writer threads of a node, or two nodes on one PostgreSQL
database) whose groups hold units of the same subscribers in opposite
orders lock those subscribers' rows in opposite orders, and deadlock: one
group waits for PostgreSQL's C{deadlock_timeout} and a unit of the other is
failed and run again (L{core.units}).  Several recharges of one subscriber
at once make that likely, for example a reseller topping up the same
accounts over SMS.

A unit function may say which rows it locks first: a C{lock_key(args)}
attribute giving a sortable key (the activation units give the credited
account and the MSISDN).  Before a group runs, its keyed units are put in
key order, among the places keyed units held, and every other unit keeps
its place; so every writer takes those locks in one order.  The units of a
group are independent requests, so their order within it decides nothing
else (the group commits or fails as one, unit by unit the same).
"""
from __future__ import annotations


def lock_key(fn, args):
    """The lock key of the unit C{fn(tx, *args)}, or None when it declares none."""
    key = getattr(fn, "lock_key", None)
    return key(args) if key is not None else None


def delegated(fn_at: int):
    """A C{lock_key} for a wrapper unit C{wrapper(tx, ..., fn, *args)} that runs
    C{fn(tx, *args)}, its C{fn} at position C{fn_at} of its arguments."""
    return lambda args: lock_key(args[fn_at], args[fn_at + 1:])


def in_lock_order(batch: list) -> list:
    """C{batch} (a list of C{(fn, args, kwargs, deferred)}) with its keyed units
    sorted by key (stable) in the places keyed units held; others stay put.

    @return: C{batch} itself when fewer than two of its units are keyed.
    """
    keyed = []
    for i, item in enumerate(batch):
        k = lock_key(item[0], item[1])
        if k is not None:
            keyed.append((k, i))
    if len(keyed) < 2:
        return batch
    order = sorted(keyed, key=lambda ki: ki[0])
    if order == keyed:
        return batch
    out = list(batch)
    for (_, place), (_, source) in zip(keyed, order):
        out[place] = batch[source]
    return out
