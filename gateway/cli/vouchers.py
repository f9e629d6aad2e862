"""C{ivoms} commands on keys, the schema and vouchers: init, keys, db, generate, batches, vouchers."""
from __future__ import annotations

import sys

from core.money import format_money
from gateway.cli.runtime import (CliError, config_of, confirm, current_ms, open_node, parse_date,
                                 whoami)


def register(sub) -> None:
    """Add this module's sub-commands to the argparse C{sub} parsers."""
    s = sub.add_parser("init", help="create keys (if missing), migrate the database, create the admin user")
    s.add_argument("--admin-user", default="admin",
                   help="name of the first administrator (default: %(default)s)")
    s.add_argument("--admin-password", help="default: a generated password, printed once")
    s.add_argument("--demo", action="store_true",
                   help="on an empty store, also generate 100 available vouchers of each type")
    s.set_defaults(func=cmd_init)

    k = sub.add_parser("keys", help="manage the key file").add_subparsers(metavar="ACTION")
    k.add_parser("init", help="create the key file").set_defaults(func=cmd_keys_init)
    k.add_parser("rotate", help="add a new active data key").set_defaults(func=cmd_keys_rotate)
    k.add_parser("show", help="list key ids (never key material)").set_defaults(func=cmd_keys_show)

    d = sub.add_parser("db", help="database schema").add_subparsers(metavar="ACTION")
    d.add_parser("upgrade", help="migrate to the newest schema").set_defaults(func=cmd_db_upgrade)
    d.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db_current)

    g = sub.add_parser("generate", help="generate a batch of vouchers")
    g.add_argument("--type", required=True, dest="type_code",
                   help="voucher type code from voucher-types.toml, e.g. EUR10")
    g.add_argument("--count", required=True, type=int,
                   help="number of vouchers (at most [generation] max_count)")
    g.add_argument("--expires", help="last valid day, YYYY-MM-DD (default: the type's validity)")
    g.add_argument("--by", default=None, help="requesting user recorded on the batch")
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("batches", help="list batches")
    b.add_argument("--limit", type=int, default=20,
                   help="batches listed, newest first (default: %(default)s)")
    b.set_defaults(func=cmd_batches)

    v = sub.add_parser("vouchers", help="inspect and change vouchers").add_subparsers(metavar="ACTION")
    vs = v.add_parser("show", help="state, type, batch, expiry and history (never the HRN)")
    vs.add_argument("serial", type=int, help="the voucher's serial number")
    vs.set_defaults(func=cmd_vouchers_show)
    vr = v.add_parser("reveal", help="print the HRN (audited)")
    vr.add_argument("serial", type=int, help="the voucher's serial number")
    vr.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    vr.set_defaults(func=cmd_vouchers_reveal)
    vt = v.add_parser("set-state", help="change state through the conditional transitions")
    vt.add_argument("state", choices=["available", "blocked", "expired", "generated", "unblock"],
                    help="target state; 'unblock' returns blocked vouchers to the state "
                         "they were blocked from")
    vt.add_argument("serial", type=int, nargs="?",
                    help="one voucher (or choose --range or --batch)")
    vt.add_argument("--range", help="FIRST-LAST serial range")
    vt.add_argument("--batch", type=int, help="every voucher of this batch id")
    vt.add_argument("--reason", help="recorded in the history and the audit log "
                    "(required to block)")
    vt.set_defaults(func=cmd_vouchers_set_state)



# -- helpers -----------------------------------------------------------------
class _Progress:
    """A progress bar on a terminal; silent otherwise."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr   # the current one, not import time's
        self.tty = self.stream.isatty()

    def __call__(self, done, total):
        if not self.tty:
            return
        width = 40
        filled = width * done // total
        self.stream.write("\r[%s%s] %3d%% %d/%d" % ("#" * filled, " " * (width - filled),
                                                   100 * done // total, done, total))
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


# -- commands -----------------------------------------------------------------
def cmd_init(args):
    import os

    from core import keys, migrate
    from core.db import Store
    from core.schema import counter
    from core.users import add_user, count_users, generate_password, hash_password

    cfg = config_of(args)
    if os.path.exists(cfg.keys.file):
        keys.load(cfg.keys.file)
    path = _sqlite_dir(cfg.database.url)
    if path:
        os.makedirs(path, exist_ok=True)
    store = Store(cfg.database.url)
    migrate.current(store)          # reach the database before writing anything
    if not os.path.exists(cfg.keys.file):
        keys.init(cfg.keys.file)
        print("created key file %s (mode 0600) - back it up: without it no voucher can be read"
              % cfg.keys.file)
    rev = migrate.upgrade(store)
    print("database at schema revision %s" % rev)

    def seed(tx):
        from sqlalchemy import select
        if tx.execute(select(counter.c.value).where(counter.c.name == "serial")).first() is None:
            tx.insert(counter, {"name": "serial", "value": cfg.generation.serial_start - 1})
        if count_users(tx) == 0:
            password = args.admin_password or generate_password()
            add_user(tx, args.admin_user, "administrator", hash_password(password), current_ms())
            return password
        return None
    password = store.run_sync(seed)
    if password is not None:
        if args.admin_password:
            print("created administrator %r" % args.admin_user)
        else:
            print("created administrator %r with password: %s" % (args.admin_user, password))
            print("(shown only this once)")
    if args.demo:
        _demo_stock(cfg, store)
    store.dispose()
    return 0


def _demo_stock(cfg, store):
    """Generate and enable 100 vouchers per configured type when no batch exists yet."""
    import datetime as dt

    from sqlalchemy import func, select

    from core import keys
    from core.crypto import VoucherCipher
    from core.generation import generate
    from core.schema import batch
    from core.timeutil import end_of_day_ms
    from core.vouchers import Selection, set_state
    if store.run_sync(lambda tx: tx.execute(select(func.count()).select_from(batch)).scalar()):
        return
    cipher = VoucherCipher(keys.load(cfg.keys.file))
    for vt in cfg.voucher_types.values():
        day = dt.date.today() + dt.timedelta(days=vt.validity_days)
        info = generate(store, cipher, vt, 100, end_of_day_ms(day), requested_by="demo",
                        serial_start=cfg.generation.serial_start, chunk_size=100)
        store.run_sync(set_state, Selection.of_batch(info.batch_id), "available", actor="demo",
                       reason="demo stock", now=current_ms())
        print("demo stock: batch %d, 100 available %s vouchers, serials %d-%d"
              % (info.batch_id, vt.code, info.first_serial, info.last_serial))
    print("try: ivoms --config %s vouchers reveal %d --yes   (then 'ivoms activate')"
          % (cfg.path, info.first_serial))


def _sqlite_dir(url):
    import os

    from core.db import sqlite_path
    p = sqlite_path(url)
    return os.path.dirname(p) if p else None


def cmd_keys_init(args):
    from core import keys
    cfg = config_of(args)
    ring = keys.init(cfg.keys.file)
    print("created key file %s with data key %s and index key %s"
          % (ring.path, ring.active, ring.index_key_id))


def cmd_keys_rotate(args):
    from core import keys
    ring = keys.rotate(config_of(args).keys.file)
    print("new active data key %s (keys: %s); existing vouchers stay readable"
          % (ring.active, ", ".join(sorted(ring.data_keys))))


def cmd_keys_show(args):
    from core import keys
    ring = keys.load(config_of(args).keys.file)
    print("key file: %s" % ring.path)
    print("data keys: %s (active: %s)" % (", ".join(sorted(ring.data_keys)), ring.active))
    print("index key: %s" % ring.index_key_id)


def cmd_db_upgrade(args):
    import os

    from core import migrate
    from core.db import Store
    cfg = config_of(args)
    path = _sqlite_dir(cfg.database.url)
    if path:
        os.makedirs(path, exist_ok=True)
    print("database at schema revision %s" % migrate.upgrade(Store(cfg.database.url)))


def cmd_db_current(args):
    from core import migrate
    from core.db import Store
    cfg = config_of(args)
    rev = migrate.current(Store(cfg.database.url))
    print("current: %s, code head: %s" % (rev or "(empty)", migrate.head()))


def cmd_generate(args):
    import datetime as dt

    from core.generation import generate, recover_interrupted
    from core.timeutil import end_of_day_ms, fmt_day
    cfg = config_of(args)
    vt = cfg.voucher_type(args.type_code)
    if args.count <= 0:
        raise CliError("--count must be at least 1")
    if args.count > cfg.generation.max_count:
        raise CliError("--count %d is above generation.max_count (%d)"
                       % (args.count, cfg.generation.max_count))
    if args.expires:
        day = parse_date(args.expires)
        if day < dt.date.today():
            raise CliError("--expires %s is in the past" % args.expires)
    else:
        day = dt.date.today() + dt.timedelta(days=vt.validity_days)
    node = open_node(args)
    node.store.run_sync(recover_interrupted, current_ms())
    info = generate(node.store, node.cipher, vt, args.count, end_of_day_ms(day),
                    requested_by=args.by or whoami(), serial_start=cfg.generation.serial_start,
                    chunk_size=cfg.generation.chunk_size, workers=cfg.generation.workers,
                    progress=_Progress())
    print("batch %d: %d vouchers of %s, serials %d-%d, expiring %s, state generated"
          % (info.batch_id, info.count, vt.code, info.first_serial, info.last_serial,
             fmt_day(end_of_day_ms(day))))


def cmd_batches(args):
    from sqlalchemy import select

    from core.schema import batch
    from core.timeutil import fmt_day, fmt_ms
    from core.generation import recover_interrupted
    node = open_node(args, keys=False)
    node.store.run_sync(recover_interrupted, current_ms())
    rows = node.store.run_sync(lambda tx: tx.execute(
        select(batch.c.id, batch.c.type_code, batch.c.count, batch.c.first_serial,
               batch.c.last_serial, batch.c.state, batch.c.expires_at, batch.c.created_at,
               batch.c.requested_by).order_by(batch.c.id.desc()).limit(args.limit)).rows,
        read_only=True)
    print("%5s %-8s %10s %-23s %-10s %-10s %-20s %s" % ("id", "type", "count", "serials", "state",
                                                      "expires", "created", "by"))
    for r in rows:
        print("%5d %-8s %10d %-23s %-10s %-10s %-20s %s" % (
            r[0], r[1], r[2], "%d-%d" % (r[3], r[4]), r[5], fmt_day(r[6]), fmt_ms(r[7]), r[8]))


def cmd_vouchers_show(args):
    from core.timeutil import fmt_day, fmt_ms
    from core.vouchers import get_voucher
    node = open_node(args, keys=False)
    v = node.store.run_sync(get_voucher, args.serial, read_only=True)
    if v is None:
        raise CliError("no voucher with serial %d" % args.serial)
    b = v["batch"]
    print("serial:    %d" % v["serial"])
    print("state:     %s%s" % (v["state"], " (%s; was %s)" % (v["reason"], v["prev_state"])
                               if v["state"] == "blocked" else ""))
    print("type:      %s (%s, %d days of account validity)" % (
        b["type_code"], format_money(b["face_value"], b["currency"]),
        b["account_validity_days"]))
    print("batch:     %d (%s)" % (b["id"], b["state"]))
    print("expires:   %s (end of day, UTC)" % fmt_day(v["expires_at"]))
    print("HRN:       ************ (key %s; 'ivoms vouchers reveal' to show)" % v["key_id"])
    if v["used_by"]:
        print("used by:   %s at %s (transaction %s)" % (v["used_by"], fmt_ms(v["used_at"]), v["txn_id"]))
    print("history:")
    for h in v["history"]:
        print("  %s  %-10s -> %-10s by %s%s" % (fmt_ms(h["at"]), h["from_state"] or "-",
                                               h["to_state"], h["actor"],
                                               "  (%s)" % h["reason"] if h["reason"] else ""))


def cmd_vouchers_reveal(args):
    from core.audit import audit
    from core.vouchers import get_voucher
    node = open_node(args)
    v = node.store.run_sync(get_voucher, args.serial, read_only=True)
    if v is None:
        raise CliError("no voucher with serial %d" % args.serial)
    if not args.yes and not confirm("Reveal the HRN of voucher %d? This is audited." % args.serial):
        raise CliError("not confirmed (use --yes when not on a terminal)")
    hrn = node.cipher.decrypt(v["serial"], v["key_id"], bytes(v["hrn_ct"]))
    node.store.run_sync(lambda tx: audit(tx, at=current_ms(), actor=whoami(), action="voucher.reveal",
                                         target=str(args.serial), origin="cli"))
    print(hrn)


def cmd_vouchers_set_state(args):
    from core.audit import audit
    from core.vouchers import Selection, set_state
    given = [x for x in (args.serial, args.range, args.batch) if x is not None]
    if len(given) != 1:
        raise CliError("give exactly one of SERIAL, --range FIRST-LAST or --batch ID")
    if args.batch is not None:
        sel = Selection.of_batch(args.batch)
    elif args.range is not None:
        try:
            first, last = (int(x) for x in args.range.split("-", 1))
        except ValueError:
            raise CliError("--range must be FIRST-LAST, e.g. 1000000000-1000000999")
        sel = Selection.range(first, last)
    else:
        sel = Selection.serial(args.serial)
    if args.state == "blocked" and not args.reason:
        raise CliError("blocking needs --reason (e.g. stolen, damaged, suspect)")
    node = open_node(args, keys=False)
    actor = whoami()

    def unit(tx):
        now = current_ms()
        res = set_state(tx, sel, args.state, actor=actor, reason=args.reason, now=now)
        audit(tx, at=now, actor=actor, action="voucher.set_state", target=sel.describe(),
              origin="cli", detail={"state": args.state, "reason": args.reason,
                                    "changed": res.changed, "skipped": res.skipped})
        return res
    res = node.store.run_sync(unit)
    print("%s: %d changed, %d skipped (state did not allow it)"
          % (sel.describe(), res.changed, res.skipped))
