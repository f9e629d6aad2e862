"""C{python -m billing.sim}: the billing simulator without the ivoms CLI."""
import argparse
import sys

from billing.sim.cli import add_arguments, billing_sim_command


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m billing.sim",
                                description="iVOMS billing simulator "
                                "(Diameter credit-control and CAI servers)")
    add_arguments(p)
    return billing_sim_command(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
