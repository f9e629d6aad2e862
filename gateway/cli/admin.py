"""C{ivoms} commands for GUI users, distribution partners and exports."""
from __future__ import annotations

from gateway.cli.runtime import CliError, config_of, current_ms, open_node, whoami


def register(sub) -> None:
    """Add this module's sub-commands to the argparse C{sub} parsers."""
    u = sub.add_parser("user", help="GUI users").add_subparsers(metavar="ACTION")
    ua = u.add_parser("add", help="create a GUI user")
    ua.add_argument("name", help="login name of the new user")
    ua.add_argument("--role", required=True,
                    help="administrator, voucher_manager, distributor, housekeeping, "
                         "customer_care or report_viewer")
    ua.add_argument("--password", help="default: a generated password, printed once")
    ua.set_defaults(func=cmd_user_add)
    ur = u.add_parser("reset-password",
                      help="give a user a new password (also lifts a login lockout; audited)")
    ur.add_argument("name", help="login name of the user")
    ur.add_argument("--stdin", action="store_true",
                    help="read the new password from the first line of standard input "
                         "instead of generating one")
    ur.set_defaults(func=cmd_user_reset_password)

    pa = sub.add_parser("partner", help="distribution partners").add_subparsers(metavar="ACTION")
    pas = pa.add_parser("add", help="add a partner, or replace its certificate")
    pas.add_argument("name", help="partner name, as used by --partner of export")
    pas.add_argument("--cert", required=True, help="the partner's X.509 certificate (PEM or DER)")
    pas.set_defaults(func=cmd_partner_add)

    ex = sub.add_parser("export", help="export generated vouchers to a partner (CMS file)")
    ex.add_argument("--partner", required=True, help="partner name")
    sel = ex.add_mutually_exclusive_group(required=True)
    sel.add_argument("--batch", type=int, help="vouchers of this batch id")
    sel.add_argument("--range", help="FIRST-LAST serial range")
    sel.add_argument("--type", dest="type_code", help="voucher type code")
    ex.add_argument("--count", type=int, help="at most this many vouchers")
    ex.add_argument("--out", required=True, help="file to write (DER CMS EnvelopedData)")
    ex.set_defaults(func=cmd_export)


def cmd_user_add(args):
    from core.audit import audit
    from core.db import Store
    from core.users import add_user, generate_password, hash_password
    cfg = config_of(args)
    password = args.password or generate_password()
    if len(password) < 12:
        raise CliError("a password must have at least 12 characters")
    store = Store(cfg.database.url)
    pw_hash = hash_password(password)

    def unit(tx):
        add_user(tx, args.name, args.role, pw_hash, current_ms())
        audit(tx, at=current_ms(), actor=whoami(), action="user.add", target=args.name, origin="cli",
              detail={"role": args.role})
    try:
        store.run_sync(unit)
    finally:
        store.dispose()
    if args.password:
        print("created user %r with role %s" % (args.name, args.role))
    else:
        print("created user %r with role %s and password: %s" % (args.name, args.role, password))
        print("(shown only this once)")


def cmd_user_reset_password(args):
    import sys

    from sqlalchemy import select

    from admin.users import change_user
    from core.schema import users
    from core.users import generate_password, hash_password
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = generate_password()
    if len(password) < 12:
        raise CliError("a password must have at least 12 characters")
    store = open_node(args, keys=False).store    # refuses a database that is not migrated
    pw_hash = hash_password(password)

    def unit(tx):
        row = tx.execute(select(users.c.id, users.c.enabled)
                         .where(users.c.name == args.name)).first()
        if row is None:
            raise CliError("no user %r (create one with 'ivoms user add')" % args.name)
        change_user(tx, row[0], "password", pw_hash=pw_hash, actor=whoami(), actor_id=None,
                    origin="cli", now=current_ms())
        return bool(row[1])
    try:
        enabled = store.run_sync(unit)
    finally:
        store.dispose()
    if args.stdin:
        print("password of %r changed" % args.name)
    else:
        print("password of %r changed to: %s" % (args.name, password))
        print("(shown only this once)")
    if not enabled:
        print("note: user %r is disabled; enable it in the GUI (Users) to log in" % args.name)


def cmd_partner_add(args):
    from core.export import ExportError, save_partner
    try:
        with open(args.cert, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CliError("cannot read %s: %s" % (args.cert, e.strerror))
    node = open_node(args, keys=False)
    try:
        _, created = node.store.run_sync(save_partner, args.name, data, actor=whoami(),
                                         origin="cli", now=current_ms())
    except ExportError as e:
        raise CliError(str(e))
    print("partner %r %s" % (args.name, "added" if created else "certificate replaced"))


def cmd_export(args):
    import os

    from core.export import ExportError, ExportFilter, export_vouchers, partner_row
    cfg = config_of(args)
    first = last = None
    if args.range:
        try:
            first, last = (int(x) for x in args.range.split("-", 1))
        except ValueError:
            raise CliError("--range must be FIRST-LAST, e.g. 1000000000-1000000999")
    if args.type_code:
        cfg.voucher_type(args.type_code)
    try:
        flt = ExportFilter(args.type_code, args.batch, first, last, count=args.count)
    except ExportError as e:
        raise CliError(str(e))
    node = open_node(args)
    p = node.store.run_sync(lambda tx: partner_row(tx, name=args.partner), read_only=True)
    if p is None:
        raise CliError("no partner %r (add one with 'ivoms partner add' or in the GUI)" % args.partner)
    s = cfg.admin
    try:
        res = node.store.run_sync(export_vouchers, node.cipher, flt, partner_id=p["id"],
                                  actor=whoami(), origin="cli", now=current_ms(),
                                  target_state=s.export_state, export_dir=s.export_dir,
                                  max_count=s.max_export_count)
    except ExportError as e:
        raise CliError("nothing exported: %s" % e)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(res.data)
    os.replace(tmp, args.out)
    print("export %d: %d vouchers (serials %d-%d) for %s, now %s; wrote %s (sha256 %s)"
          % (res.export_id, res.count, res.first_serial, res.last_serial, res.partner,
             s.export_state, args.out, res.sha256))
