"""Configuration loading and validation (issue 2: config, bad input).

Every error is a ConfigError whose message names the file and the dotted key.
Tests edit a copy of the shipped conf/ (the C{conf_dir} fixture).
"""
from __future__ import annotations

import os

import pytest

from gateway.config import Config, ConfigError, VoucherType, load_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Conf:
    """A copied conf/ folder whose two files a test rewrites."""

    def __init__(self, folder):
        self.dir = str(folder)
        self.main = os.path.join(self.dir, "ivoms.toml")
        self.types = os.path.join(self.dir, "voucher-types.toml")

    def read(self, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def write(self, path, text):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)

    def edit(self, path, old, new):
        text = self.read(path)
        assert old in text, "test set-up: %r not in %s" % (old, path)
        self.write(path, text.replace(old, new, 1))

    def load(self):
        return load_config(self.main)

    def error(self) -> str:
        with pytest.raises(ConfigError) as ei:
            self.load()
        return str(ei.value)


@pytest.fixture
def conf(conf_dir):
    return Conf(conf_dir)


# -- the shipped configuration ------------------------------------------------
def test_shipped_config_loads():
    cfg = load_config(os.path.join(REPO, "conf", "ivoms.toml"))
    assert isinstance(cfg, Config)
    assert {"EUR5", "EUR10", "EUR20"} <= set(cfg.voucher_types)
    eur10 = cfg.voucher_type("EUR10")
    assert isinstance(eur10, VoucherType)
    assert (eur10.face_value, eur10.currency, eur10.hrn_length) == (1000, "EUR", 14)
    assert cfg.voucher_type("EUR20").hrn_length == 16
    assert cfg.generation.max_count == 10_000_000
    assert cfg.billing.connector == "ledger"
    assert [t.failures for t in cfg.fraud.tiers] == [5, 10, 15]
    # the relative SQLite file and key file resolve inside the shipped conf/
    assert cfg.database_url == "sqlite:///" + os.path.join(REPO, "conf", "var", "ivoms.db")
    assert cfg.keys.file == os.path.join(REPO, "conf", "var", "keys.json")


def test_copy_loads_and_unknown_type_is_a_config_error(conf):
    cfg = conf.load()
    with pytest.raises(ConfigError, match=r"unknown voucher type 'NOPE' \(configured: [^)]*EUR10"):
        cfg.voucher_type("NOPE")


# -- unknown keys -------------------------------------------------------------
def test_unknown_top_level_key(conf):
    conf.write(conf.main, "colour = 'red'\n" + conf.read(conf.main))
    msg = conf.error()
    assert msg.startswith(conf.main + ": ")
    assert "colour: unknown key 'colour'" in msg
    assert "allowed:" in msg and "database" in msg


def test_unknown_key_in_nested_table(conf):
    conf.edit(conf.main, "[database]\n", "[database]\npoolsize = 4\n")
    msg = conf.error()
    assert msg.startswith(conf.main + ": ")
    assert "database.poolsize: unknown key 'poolsize'" in msg
    assert "pool_size" in msg   # the allowed keys help to spot the typo


def test_unknown_key_in_deeper_table(conf):
    conf.edit(conf.main, "[billing.ledger]\n", "[billing.ledger]\noverdraft = true\n")
    msg = conf.error()
    assert msg.startswith("%s: billing.ledger.overdraft: unknown key 'overdraft' (allowed: "
                          % conf.main)
    assert "auto_create" in msg and "currency" in msg


def test_unknown_key_in_table_array_entry(conf):
    conf.edit(conf.main, "{ failures = 10, bar_seconds = 3600 }",
              "{ failures = 10, bar_seconds = 3600, forever = true }")
    msg = conf.error()
    assert msg.startswith(conf.main + ": ")
    assert "fraud.tiers[1].forever: unknown key 'forever'" in msg


def test_unknown_table(conf):
    conf.write(conf.main, conf.read(conf.main) + "\n[smtp]\nhost = 'x'\n")
    assert "%s: smtp: unknown key 'smtp'" % conf.main in conf.error()


def test_unknown_key_in_voucher_type(conf):
    conf.edit(conf.types, 'code = "EUR10"\n', 'code = "EUR10"\ncolour = "red"\n')
    msg = conf.error()
    assert msg.startswith(conf.types + ": ")   # names the voucher-types file, not ivoms.toml
    assert "voucher_type[1].colour: unknown key 'colour'" in msg


# -- wrong types --------------------------------------------------------------
@pytest.mark.parametrize("old,new,key,problem", [
    ("pool_size = 8", 'pool_size = "8"', "database.pool_size", "must be an integer"),
    ("pool_size = 8", "pool_size = true", "database.pool_size", "must be an integer"),
    ("pool_size = 8", "pool_size = 8.5", "database.pool_size", "must be an integer"),
    ("billing_timeout = 10.0", 'billing_timeout = "10"', "activation.billing_timeout",
     "must be a number"),
    ("reset_on_success = true", "reset_on_success = 1", "fraud.reset_on_success",
     "must be true or false"),
    ('name = "node1"', "name = 1", "node.name", "must be a string"),
    ("lengths = [11, 12]", "lengths = 11", "msisdn.lengths", "must be a list"),
    ("lengths = [11, 12]", 'lengths = [11, "12"]', "msisdn.lengths[1]", "must be an integer"),
    ('international_prefixes = ["00", "+"]', 'international_prefixes = "00"',
     "msisdn.international_prefixes", "must be a list"),
])
def test_wrong_types(conf, old, new, key, problem):
    conf.edit(conf.main, old, new)
    msg = conf.error()
    assert msg.startswith(conf.main + ": ")
    assert "%s: %s" % (key, problem) in msg


def test_scalar_where_a_table_is_expected(conf):
    conf.write(conf.main, "node = 3\n")
    assert conf.error() == "%s: node: must be a table" % conf.main


@pytest.mark.parametrize("old,new,key,problem", [
    ("level = \"info\"", "level = \"verbose\"", "logging.level", "must be one of"),
    ("format = \"text\"", "format = \"xml\"", "logging.format", "must be one of"),
    ("pool_size = 8", "pool_size = 0", "database.pool_size", "must be greater than 0"),
    ("max_count = 10000000", "max_count = -1", "generation.max_count", "must be greater than 0"),
    ("chunk_size = 20000", "chunk_size = 0", "generation.chunk_size", "must be greater than 0"),
    ('country_code = "381"', 'country_code = "+381"', "msisdn.country_code",
     "must be a string of digits"),
    ('connector = "ledger"', 'connector = "oracle"', "billing.connector", "must be one of"),
    ("{ failures = 10, bar_seconds = 3600 }", "{ failures = 3, bar_seconds = 3600 }",
     "fraud.tiers", "strictly increasing"),
    ("{ failures = 10, bar_seconds = 3600 }", "{ failures = 10 }",
     "fraud.tiers[1].bar_seconds", "missing (required)"),
    ("lengths = [11, 12]", "lengths = [3]", "msisdn.lengths", "not a valid E.164 length"),
])
def test_bad_values(conf, old, new, key, problem):
    conf.edit(conf.main, old, new)
    msg = conf.error()
    assert msg.startswith(conf.main + ": ")
    assert "%s: " % key in msg and problem in msg


# -- voucher types -------------------------------------------------------------
EUR10 = 'code = "EUR10"\nname = "Recharge 10 EUR"\nface_value = 1000\ncurrency = "EUR"\n'


@pytest.mark.parametrize("drop", ["code", "name", "face_value", "currency"])
def test_missing_required_voucher_type_field(conf, drop):
    lines = [line for line in EUR10.splitlines(keepends=True) if not line.startswith(drop + " =")]
    conf.edit(conf.types, EUR10, "".join(lines))
    assert conf.error() == "%s: voucher_type[1].%s: missing (required)" % (conf.types, drop)


def test_optional_voucher_type_fields_take_defaults(conf):
    conf.write(conf.types, conf.read(conf.types)
               + '\n[[voucher_type]]\ncode = "X"\nname = "x"\nface_value = 1\ncurrency = "USD"\n')
    vt = conf.load().voucher_type("X")
    assert (vt.validity_days, vt.account_validity_days, vt.hrn_length, vt.loyalty) == (365, 0, 14, {})


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "", "E1R"])
def test_bad_currency(conf, currency):
    conf.edit(conf.types, EUR10, EUR10.replace('currency = "EUR"', 'currency = "%s"' % currency))
    msg = conf.error()
    assert msg.startswith(conf.types + ": voucher_type[1].currency: ")
    assert "ISO 4217" in msg


@pytest.mark.parametrize("length,ok", [(7, False), (8, True), (14, True), (20, True),
                                       (21, False), (0, False), (-14, False)])
def test_hrn_length_bounds(conf, length, ok):
    conf.edit(conf.types, "hrn_length = 16", "hrn_length = %d" % length)
    if ok:
        assert conf.load().voucher_type("EUR20").hrn_length == length
    else:
        assert conf.error() == ("%s: voucher_type[2].hrn_length: must be between 8 and 20"
                                % conf.types)


def test_hrn_length_wrong_type(conf):
    conf.edit(conf.types, "hrn_length = 16", 'hrn_length = "16"')
    assert "voucher_type[2].hrn_length: must be an integer" in conf.error()


def test_negative_face_value(conf):
    conf.edit(conf.types, "face_value = 1000", "face_value = -1000")
    assert "voucher_type[1].face_value: must not be negative" in conf.error()


def test_loyalty_weights_must_be_integers(conf):
    conf.edit(conf.types, "loyalty = {}", 'loyalty = { gold = "two" }')
    assert "voucher_type[0].loyalty.gold: must be an integer" in conf.error()


def test_duplicate_voucher_type_code(conf):
    conf.edit(conf.types, 'code = "EUR20"', 'code = "EUR10"')
    assert conf.error() == "%s: voucher_type[2].code: duplicate code 'EUR10'" % conf.types


@pytest.mark.parametrize("code", ["", "EUR 10", "A" * 33, "EUR/10"])
def test_bad_voucher_type_code(conf, code):
    conf.edit(conf.types, 'code = "EUR20"', 'code = "%s"' % code)
    assert conf.error().startswith("%s: voucher_type[2].code: must be 1-32" % conf.types)


def test_voucher_type_must_be_an_array_of_tables(conf):
    conf.write(conf.types, '[voucher_type]\ncode = "X"\n')
    assert conf.error() == "%s: voucher_type: must be a list" % conf.types


def test_minimal_config_takes_every_default(conf):
    conf.write(conf.main, "")
    cfg = conf.load()
    assert cfg.node.name == "node1"
    assert cfg.generation.chunk_size == 20_000
    assert cfg.database_url == "sqlite:///" + os.path.join(conf.dir, "var", "ivoms.db")
    assert {"EUR5", "EUR10", "EUR20"} <= set(cfg.voucher_types)


# -- files ---------------------------------------------------------------------
def test_malformed_toml_main(conf):
    conf.write(conf.main, conf.read(conf.main) + "\n[database\n")
    msg = conf.error()
    assert msg.startswith(conf.main + ": not valid TOML: ")
    assert "line" in msg


def test_malformed_toml_voucher_types(conf):
    conf.write(conf.types, '[[voucher_type]\ncode = "X"\n')
    assert conf.error().startswith(conf.types + ": not valid TOML: ")


def test_duplicate_toml_key_is_malformed(conf):
    conf.edit(conf.main, "pool_size = 8\n", "pool_size = 8\npool_size = 9\n")
    assert conf.error().startswith(conf.main + ": not valid TOML: ")


def test_missing_main_file(tmp_path):
    path = str(tmp_path / "nowhere" / "ivoms.toml")
    with pytest.raises(ConfigError) as ei:
        load_config(path)
    assert str(ei.value) == "%s: file not found" % path


def test_missing_voucher_types_file(conf):
    os.unlink(conf.types)
    assert conf.error() == "%s: file not found" % conf.types


def test_relative_config_path_is_made_absolute(conf, monkeypatch):
    monkeypatch.chdir(os.path.dirname(conf.dir))
    cfg = load_config(os.path.join(os.path.basename(conf.dir), "ivoms.toml"))
    assert cfg.path == conf.main
    assert cfg.base_dir == conf.dir


# -- relative paths --------------------------------------------------------------
def test_relative_paths_resolve_against_the_config_folder(conf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # the working directory must not matter
    conf.edit(conf.main, 'url = "sqlite:///var/ivoms.db"', 'url = "sqlite:///data/sub/x.db"')
    conf.edit(conf.main, 'file = "var/keys.json"', 'file = "../secrets/keys.json"')
    conf.edit(conf.main, 'file = "-"', 'file = "log/ivoms.log"')
    cfg = conf.load()
    assert cfg.database_url == "sqlite:///" + os.path.join(conf.dir, "data", "sub", "x.db")
    assert cfg.database.url == cfg.database_url
    assert cfg.keys.file == os.path.join(os.path.dirname(conf.dir), "secrets", "keys.json")
    assert cfg.logging.file == os.path.join(conf.dir, "log", "ivoms.log")


def test_shipped_relative_defaults_resolve_in_the_copy(conf):
    cfg = conf.load()
    assert cfg.database_url == "sqlite:///" + os.path.join(conf.dir, "var", "ivoms.db")
    assert cfg.keys.file == os.path.join(conf.dir, "var", "keys.json")
    assert cfg.logging.file == "-"


def test_voucher_types_file_resolves_against_config_folder(conf):
    os.makedirs(os.path.join(conf.dir, "catalogue"))
    os.rename(conf.types, os.path.join(conf.dir, "catalogue", "types.toml"))
    conf.edit(conf.main, 'voucher_types = "voucher-types.toml"',
              'voucher_types = "catalogue/types.toml"')
    assert {"EUR5", "EUR10", "EUR20"} <= set(conf.load().voucher_types)


def test_absolute_paths_and_other_databases_are_kept(conf, tmp_path):
    keyfile = str(tmp_path / "elsewhere" / "k.json")
    conf.edit(conf.main, 'url = "sqlite:///var/ivoms.db"',
              'url = "postgresql+psycopg://ivoms@db.example:5432/ivoms"')
    conf.edit(conf.main, 'file = "var/keys.json"', 'file = "%s"' % keyfile)
    cfg = conf.load()
    assert cfg.database_url == "postgresql+psycopg://ivoms@db.example:5432/ivoms"
    assert cfg.keys.file == keyfile


def test_the_writer_process_is_the_default_on_sqlite_and_threads_on_postgresql(conf):
    assert conf.load().database.writer_process is True
    conf.edit(conf.main, 'writer = "auto"', 'writer = "threads"')
    assert conf.load().database.writer_process is False
    conf.edit(conf.main, 'writer = "threads"', 'writer = "auto"')
    conf.edit(conf.main, 'url = "sqlite:///var/ivoms.db"',
              'url = "postgresql+psycopg://ivoms@127.0.0.1:5432/ivoms"')
    assert conf.load().database.writer_process is False


def test_a_writer_process_on_postgresql_is_refused_by_name(conf):
    conf.edit(conf.main, 'url = "sqlite:///var/ivoms.db"',
              'url = "postgresql+psycopg://ivoms@127.0.0.1:5432/ivoms"')
    conf.edit(conf.main, 'writer = "auto"', 'writer = "process"')
    with pytest.raises(ConfigError, match=r"ivoms.toml: database: writer: \"process\" serves "
                                          r"SQLite only; on postgresql\+psycopg"):
        conf.load()
    conf.edit(conf.main, 'writer = "process"', 'writer = "forked"')
    with pytest.raises(ConfigError, match=r"database.writer"):
        conf.load()


def test_absolute_sqlite_path_is_kept(conf, tmp_path):
    db = str(tmp_path / "abs.db")
    conf.edit(conf.main, 'url = "sqlite:///var/ivoms.db"', 'url = "sqlite:///%s"' % db)
    assert conf.load().database_url == "sqlite:///" + db


# -- UCIP and CAI lookup settings ----------------------------------------------
def test_ucip_connector_loads_and_bad_keys_name_file_and_key(conf):
    conf.edit(conf.main, 'connector = "ledger"', 'connector = "ucip"')
    cfg = conf.load()
    assert cfg.billing.connector == "ucip"
    assert cfg.billing.ucip.hosts == ["http://127.0.0.1:10010/Air"]
    conf.edit(conf.main, 'hosts = ["http://127.0.0.1:10010/Air"]', 'hosts = ["air1:10010"]')
    msg = conf.error()
    assert conf.main in msg and "billing.ucip.hosts" in msg


def test_ucip_national_format_needs_country_code(conf):
    conf.edit(conf.main, 'connector = "ledger"', 'connector = "ucip"')
    conf.edit(conf.main, 'number_format = "international"', 'number_format = "national"')
    msg = conf.error()
    assert conf.main in msg and "billing.ucip.country_code" in msg


def test_ucip_lookup_mode_is_checked(conf):
    conf.edit(conf.main, 'lookup = "none"', 'lookup = "ask"')
    msg = conf.error()
    assert conf.main in msg and "billing.ucip.lookup" in msg


def test_cai_lookup_answer_values_must_not_overlap(conf):
    conf.edit(conf.main, 'connector = "ledger"', 'connector = "cai"')
    conf.edit(conf.main, 'lookup_refused_values = ["REFUSED"]', 'lookup_refused_values = ["CREDITED"]')
    msg = conf.error()
    assert conf.main in msg and "billing.cai.lookup_credited_values" in msg
